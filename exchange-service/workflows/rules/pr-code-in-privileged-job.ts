/**
 * DSTS101: a privileged job on an event a fork can trigger checks out the pull request's head and then runs code:
 * the classic "pwn request". The fork's build scripts, test hooks or local actions run with the job's OIDC token.
 */
import type { Step } from '../model.js';
import type { Hit } from '../types.js';
import { UNTRUSTED_TRIGGERS, jobLabel, runsOn, stepLabel, usesAction, type JobContext, type WorkflowRule } from './rule.js';

/** Expressions and refs that name the pull request's head (its branch, commit or merge ref). */
const PR_HEAD = /github\.event\.pull_request\.(?:head\.|merge_commit_sha)|refs\/pull\/|github\.event\.workflow_run\.head_|github\.event\.workflow_run\.pull_requests|github\.head_ref|github\.event\.issue\.pull_request|github\.event\.client_payload/;
/** Shell commands that fetch or switch to a pull request's code. */
const PR_CHECKOUT_COMMAND = /\bgh\s+pr\s+checkout\b|\bgit\s+(?:fetch|checkout|pull|switch|worktree\s+add)\b[^\n]*(?:pull\/|refs\/pull|head_ref|head\.ref|head\.sha|head_sha|head_branch|HEAD_REF|HEAD_SHA)/;

function checksOutPullRequest(step: Step): boolean {
  if (usesAction(step, 'actions/checkout')) {
    return [step.with.get('ref'), step.with.get('repository')].some((t) => t !== undefined && PR_HEAD.test(t.value));
  }
  return step.run !== undefined && PR_CHECKOUT_COMMAND.test(step.run.value);
}

const runsCode = (step: Step) => step.run !== undefined || (step.uses !== undefined && step.uses.value.trim().startsWith('./'));

export const prCodeInPrivilegedJob: WorkflowRule = {
  id: 'DSTS101',
  name: 'pr-code-in-privileged-job',
  severity: 'error',
  jobs: 'privileged',
  summary: 'A privileged job on pull_request_target, workflow_run or issue_comment checks out the pull request head and then runs a script or a local action.',
  why: "On these events the job runs with the base repository's privileges, so the pull request's build scripts, install hooks and local actions run with the right to mint deploy tokens (a \"pwn request\").",
  fix: 'Build the pull request in a job without id-token (permissions: contents: read) that uploads the output as an artifact, and deploy that artifact from a job with id-token: write that checks out and runs nothing from the pull request.',
  checkJob(ctx: JobContext): Hit[] {
    const events = runsOn(ctx, UNTRUSTED_TRIGGERS);
    if (events.length === 0) return [];
    const steps = ctx.job.steps;
    const checkout = steps.find(checksOutPullRequest);
    if (!checkout) return [];
    const runner = steps.slice(checkout.index + 1).find(runsCode);
    if (!runner) return [];
    const at = runner.run?.pos ?? runner.uses!.pos;
    return [
      {
        file: ctx.workflow.file,
        at,
        what: `${jobLabel(ctx)} ${ctx.privilege} on ${events.join(', ')}; ${stepLabel(checkout)} at line ${checkout.pos.line} checks out the pull request's code and ${stepLabel(runner)} then runs ${runner.run ? 'a script' : 'a local action'}`,
      },
    ];
  },
};
