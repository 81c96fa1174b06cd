/**
 * DSTS202: `actions/checkout` without `persist-credentials: false` leaves the job's GITHUB_TOKEN in `.git/config`,
 * where every later step (and anything that uploads the workspace) can read it.
 */
import type { Hit } from '../types.js';
import { isFalse, jobLabel, stepLabel, usesAction, type JobContext, type WorkflowRule } from './rule.js';

export const checkoutPersistsCredentials: WorkflowRule = {
  id: 'DSTS202',
  name: 'checkout-persists-credentials',
  severity: 'warning',
  jobs: 'all',
  summary: 'actions/checkout without persist-credentials: false.',
  why: 'By default actions/checkout writes the job\'s GITHUB_TOKEN into .git/config, where every later step, build script and uploaded artifact of the workspace can read it.',
  fix: 'Add `with: persist-credentials: false` to the checkout step (pass a token explicitly to the one step that must push, if any).',
  checkJob(ctx: JobContext): Hit[] {
    return ctx.job.steps
      .filter((step) => usesAction(step, 'actions/checkout') && !isFalse(step.with.get('persist-credentials')))
      .map((step) => ({ file: ctx.workflow.file, at: step.uses!.pos, what: `${jobLabel(ctx)}, ${stepLabel(step)} checks out without persist-credentials: false` }));
  },
};
