/**
 * DSTS101: a privileged job on an event a fork can trigger checks out the pull request's head and then runs code:
 * the classic "pwn request". The fork's build scripts, test hooks or local actions run with the job's OIDC token.
 */
import { expressionsIn, normaliseExpression } from '../expressions.js';
import type { Step } from '../model.js';
import { installingAction } from './build-in-privileged-job.js';
import type { Hit } from '../types.js';
import { UNTRUSTED_TRIGGERS, jobLabel, runsOn, stepLabel, usesAction, type JobContext, type WorkflowRule } from './rule.js';

/**
 * Expressions and refs that name the pull request's head (its branch, commit, number or merge ref), matched on the
 * normalised expression (GitHub reads `GitHub.Event['pull_request'].Head.SHA` as `github.event.pull_request.head.sha`).
 */
const PR_HEAD = /github\.event\.pull_request\.(?:head\b|merge_commit_sha|number)|refs\/pull\/|github\.event\.workflow_run\.(?:head_|pull_requests)|github\.head_ref|github\.event\.issue\.(?:pull_request|number)|github\.event\.(?:number|after)\b|github\.event\.client_payload/;
/** Shell commands that fetch or switch to a pull request's code (or apply its diff: `gh pr diff | git apply`). */
const PR_CHECKOUT_COMMAND = /\bgh\s+pr\s+(?:checkout|diff)\b|\b(?:diff_url|patch_url)\b|\bgit\s+(?:fetch|checkout|pull|switch|worktree\s+add|remote\s+add)\b[^\n]*(?:pull\/|refs\/pull|head_ref|head\.ref|head\.sha|head_sha|head_branch|HEAD_REF|HEAD_SHA)/;
/** A `git fetch|checkout …` line, to test for a `$NAME` that carries the head. */
const GIT_COMMAND = /\b(?:git\s+(?:fetch|checkout|pull|switch|worktree\s+add|remote\s+add|clone)|gh\s+repo\s+clone)\b[^\n]*/g;

const namesHead = (value: string) => PR_HEAD.test(value.split('${{').map((part, i) => (i === 0 ? part : normaliseExpression(part))).join('${{'));

/** `env:` names (workflow, job, step) whose value names the pull request's head. */
function headEnv(ctx: Pick<JobContext, 'workflow' | 'job'>, step: Step): Set<string> {
  const names = new Set<string>();
  for (const env of [ctx.workflow.env, ctx.job.env, step.env]) {
    for (const [name, value] of env) {
      if (namesHead(value.value)) names.add(name);
      else names.delete(name);
    }
  }
  return names;
}

/** True when a value names the head directly, or through `${{ env.NAME }}` of an env that does. */
function refNamesHead(value: string, env: ReadonlySet<string>): boolean {
  if (namesHead(value)) return true;
  const lower = new Set([...env].map((n) => n.toLowerCase()));
  return expressionsIn(value).some((e) => [...normaliseExpression(e.body).matchAll(/(?<![\w.])env\.([a-z_][\w-]*)/g)].some((m) => lower.has(m[1]!)));
}

function checksOutPullRequest(ctx: Pick<JobContext, 'workflow' | 'job'>, step: Step): boolean {
  const env = headEnv(ctx, step);
  if (usesAction(step, 'actions/checkout')) {
    return [step.with.get('ref'), step.with.get('repository')].some((t) => t !== undefined && refNamesHead(t.value, env));
  }
  if (step.run === undefined) return false;
  const run = step.run.value;
  if (PR_CHECKOUT_COMMAND.test(run) || [...run.matchAll(GIT_COMMAND)].some((m) => namesHead(m[0]))) return true;
  // `git fetch origin "$SHA"` where env: SHA: ${{ github.event.pull_request.head.sha }}.
  return [...run.matchAll(GIT_COMMAND)].some((m) => [...env].some((name) => new RegExp(String.raw`\$\{?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\b`).test(m[0])));
}

/** True when a job of the workflow checks out the pull request's head and then runs anything (its outputs are the pull request's to write). */
export function runsPullRequestCode(workflow: JobContext['workflow'], job: JobContext['job']): boolean {
  const checkout = job.steps.find((step) => checksOutPullRequest({ workflow, job }, step));
  return checkout !== undefined && job.steps.slice(checkout.index + 1).some(runsCode);
}

/** A script, a local action, or github-script loading a file of the checkout (`require('./x')`, `import('./x')`). */
function runsCode(step: Step): boolean {
  if (step.run !== undefined || (step.uses !== undefined && step.uses.value.trim().startsWith('./')) || installingAction(step)) return true;
  const script = usesAction(step, 'actions/github-script') ? step.with.get('script')?.value : undefined;
  return script !== undefined && /\b(?:require|import)\s*\(/.test(script);
}

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
    const checkout = steps.find((step) => checksOutPullRequest(ctx, step));
    if (!checkout) return [];
    const runner = steps.slice(checkout.index + 1).find(runsCode);
    if (!runner) return [];
    const at = runner.run?.pos ?? runner.uses!.pos;
    const what = runner.run ? 'a script' : runner.uses!.value.trim().startsWith('./') ? 'a local action' : installingAction(runner) ? "an action that installs the checkout's dependencies" : "a script that loads the checkout's files";
    return [
      {
        file: ctx.workflow.file,
        at,
        what: `${jobLabel(ctx)} ${ctx.privilege} on ${events.join(', ')}; ${stepLabel(checkout)} at line ${checkout.pos.line} checks out the pull request's code and ${stepLabel(runner)} then runs ${what}`,
      },
    ];
  },
};
