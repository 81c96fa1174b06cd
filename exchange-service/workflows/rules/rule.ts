/**
 * What a workflow rule is: its metadata, and a check over one job in its context (or over a whole workflow).
 */
import { positionIn, type Job, type Step, type Text, type Workflow } from '../model.js';
import type { Hit, RuleMeta } from '../types.js';

/** One job as the checker evaluates it: in its own workflow, or inside a reusable workflow reached from a caller. */
export interface JobContext {
  workflow: Workflow;
  job: Job;
  /** Why the job is privileged (holds `id-token: write` or uses the deploy-sts Action), or undefined. */
  privilege?: string;
  /** Events that can run the job (a called workflow runs for its caller's events). */
  events: ReadonlySet<string>;
  /** `env.NAME` keys (workflow and job level) whose value carries untrusted input. */
  taintedEnv: ReadonlySet<string>;
  /** `matrix.NAME` keys whose values carry untrusted input. */
  taintedMatrix: ReadonlySet<string>;
  /** `inputs.NAME` of a called workflow whose caller passes untrusted input in `with:` (empty when not called). */
  taintedInputs: ReadonlySet<string>;
  /** Jobs this one needs, transitively, in the same workflow (their `if:` and environments gate it too). */
  ancestors: readonly Job[];
  /** When reached through a reusable workflow call: ` (called from file job X)`. */
  via: string;
}

export interface WorkflowRule extends RuleMeta {
  /** `privileged`: only jobs that hold `id-token: write` or use the deploy-sts Action; `all`: every job of a checked workflow. */
  jobs?: 'privileged' | 'all';
  checkJob?(ctx: JobContext): Hit[];
  checkWorkflow?(workflow: Workflow, contexts: readonly JobContext[]): Hit[];
}

/** Events on which a workflow runs with the base repository's privileges for something a fork controls. */
export const UNTRUSTED_TRIGGERS = ['pull_request_target', 'workflow_run', 'issue_comment'] as const;

export interface ActionRef {
  kind: 'local' | 'docker' | 'remote';
  /** `owner/repo` or `owner/repo/path`, lower-cased (remote); the path as written (local); the image (docker). */
  name: string;
  ref?: string;
}

export function actionRef(uses: string): ActionRef {
  const value = uses.trim();
  if (value.startsWith('./') || value === '.') return { kind: 'local', name: value };
  if (value.startsWith('docker://')) {
    const at = value.lastIndexOf('@');
    return at < 0 ? { kind: 'docker', name: value } : { kind: 'docker', name: value.slice(0, at), ref: value.slice(at + 1) };
  }
  const at = value.lastIndexOf('@');
  return at < 0 ? { kind: 'remote', name: value.toLowerCase() } : { kind: 'remote', name: value.slice(0, at).toLowerCase(), ref: value.slice(at + 1) };
}

/** True when a step uses the action `owner/repo` (any ref, any sub-path when `subPaths`). */
export function usesAction(step: Step, name: string, subPaths = false): boolean {
  if (!step.uses) return false;
  const ref = actionRef(step.uses.value);
  return ref.kind === 'remote' && (ref.name === name || (subPaths && ref.name.startsWith(`${name}/`)));
}

/** A step's label for messages: `step 3 ("Build")` or `step 3 (actions/checkout)`. */
export function stepLabel(step: Step): string {
  const what = step.name ?? step.id ?? (step.uses ? step.uses.value.split('@')[0] : step.run ? 'run' : '');
  return `step ${step.index + 1}${what ? ` (${JSON.stringify(what)})` : ''}`;
}

export function jobLabel(ctx: JobContext): string {
  return `job "${ctx.job.id}"${ctx.via}`;
}

/** `false` as GitHub reads a boolean input (`false`, `'false'`). */
export function isFalse(text: Text | undefined): boolean {
  return text !== undefined && text.value.trim().toLowerCase() === 'false';
}

/**
 * A command word at command position: line start, after `;`, `&&`, `||`, `|`, `(`, `{`, `!`, `` ` ``, `then`, `do`,
 * `sudo`, `env`, `command` …, and after any `NAME=value` assignments that prefix a command.
 */
export const AT_COMMAND = String.raw`(?:^|[;&|(\x60{!]|\b(?:then|do|else|sudo|exec|time|xargs|env|command|builtin|nohup|nice)\s)\s*(?:[A-Za-z_]\w*=(?:"[^"]*"|'[^']*'|(?:[^\s;&|"'$()\x60]|\$\{?\w+\}?)*)\s+)*`;

/** The lines of a script with their offsets, full-line comments blanked; a line continued with `\` is joined to the next. */
export function scriptLines(script: string): { text: string; offset: number }[] {
  const out: { text: string; offset: number }[] = [];
  let offset = 0;
  // Same length, so offsets still point into the script.
  for (const line of script.replace(/\\\n/g, '  ').split('\n')) {
    out.push({ text: /^\s*#/.test(line) ? '' : line, offset });
    offset += line.length + 1;
  }
  return out;
}

/** Where the match at `index` of `needle` inside a text's value is written in the file. */
export function matchPosition(workflow: Workflow, text: Text, index: number, needle: string): { line: number; column: number } {
  // A match across a `\` line continuation is not written as matched: locate its first word.
  if (text.value.slice(index, index + needle.length) !== needle) needle = needle.split(/\s/)[0]!;
  let occurrence = 0;
  for (let i = text.value.indexOf(needle); i >= 0 && i < index; i = text.value.indexOf(needle, i + 1)) occurrence++;
  return positionIn(workflow.source, text, needle, occurrence);
}

/** True when the job's events include one of `events`. */
export function runsOn(ctx: JobContext, events: readonly string[]): string[] {
  return events.filter((e) => ctx.events.has(e));
}
