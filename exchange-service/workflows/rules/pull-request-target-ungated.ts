/**
 * DSTS205: a privileged job on `pull_request_target` with no gate: neither an environment (whose required reviewers
 * approve each run) nor an `if:` on a label a maintainer sets, on the job or a job it needs.
 */
import type { Hit } from '../types.js';
import { jobLabel, type JobContext, type WorkflowRule } from './rule.js';

const LABEL_CHECK = /github\.event\.pull_request\.labels|github\.event\.label\.name/;

export const pullRequestTargetUngated: WorkflowRule = {
  id: 'DSTS205',
  name: 'pull-request-target-ungated',
  severity: 'warning',
  jobs: 'privileged',
  summary: 'A privileged job on pull_request_target runs for every pull request: no environment: (with required reviewers) and no label condition on it or a job it needs.',
  why: 'Anyone can open a pull request; without a gate every fork pull request gets a deploy token (preview only, but still your infrastructure) without a maintainer looking at it first.',
  fix: "Give the job (or the job it needs) an environment: whose protection rules require reviewers, e.g. environment: preview, or gate it on a label a maintainer sets: if: contains(github.event.pull_request.labels.*.name, 'safe to preview').",
  checkJob(ctx: JobContext): Hit[] {
    if (!ctx.events.has('pull_request_target')) return [];
    // An environment named by an expression (`preview-${{ github.head_ref }}`) is no gate: GitHub creates a missing
    // environment without protection rules, so the pull request picks one that has no reviewers.
    const gated = [ctx.job, ...ctx.ancestors].some((j) => (j.environment !== undefined && !j.environment.value.includes('${{')) || (j.if !== undefined && LABEL_CHECK.test(j.if.value)));
    if (gated) return [];
    return [{ file: ctx.workflow.file, at: ctx.job.pos, what: `${jobLabel(ctx)} ${ctx.privilege} on pull_request_target with no environment: and no label condition` }];
  },
};
