/**
 * DSTS201: an action (or a reusable workflow of another repository) not pinned to a full commit SHA. A tag or branch
 * can be moved by whoever controls that repository, and the next run executes the new code with this job's rights.
 */
import type { Text } from '../model.js';
import type { Hit } from '../types.js';
import { actionRef, jobLabel, stepLabel, type JobContext, type WorkflowRule } from './rule.js';

const FULL_SHA = /^[0-9a-f]{40}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function unpinned(uses: Text): string | undefined {
  const ref = actionRef(uses.value);
  if (ref.kind === 'local') return undefined;
  if (ref.kind === 'docker') return ref.ref !== undefined && DIGEST.test(ref.ref) ? undefined : `${uses.value} is not pinned to an image digest (@sha256:…)`;
  if (ref.ref !== undefined && FULL_SHA.test(ref.ref)) return undefined;
  return ref.ref === undefined ? `${uses.value} names no ref` : `${uses.value} is pinned to "${ref.ref}", a tag or branch that can be moved`;
}

export const unpinnedAction: WorkflowRule = {
  id: 'DSTS201',
  name: 'unpinned-action',
  severity: 'warning',
  jobs: 'all',
  summary: 'An action or reusable workflow from another repository is not pinned to a full 40-character commit SHA (a docker:// image not to a digest).',
  why: 'Tags and branches are mutable: whoever controls (or compromises) that repository can move them, and your next run executes their new code next to your OIDC token.',
  fix: 'Pin to the full commit SHA and keep the version as a comment, e.g. uses: actions/checkout@<40-hex-sha> # v4.2.2; let Dependabot or Renovate update the pins.',
  checkJob(ctx: JobContext): Hit[] {
    const hits: Hit[] = [];
    const where = (uses: Text, label: string) => {
      const problem = unpinned(uses);
      if (problem) hits.push({ file: ctx.workflow.file, at: uses.pos, what: `${jobLabel(ctx)}, ${label}: ${problem}` });
    };
    if (ctx.job.uses) where(ctx.job.uses, 'the reusable workflow call');
    for (const step of ctx.job.steps) if (step.uses) where(step.uses, stepLabel(step));
    return hits;
  },
};
