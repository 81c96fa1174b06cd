/**
 * Checking a set of workflow files: parse each, work out every job's context — its privileges (id-token: write,
 * directly, from the workflow's permissions or inherited through a reusable-workflow call; or a use of the
 * deploy-sts Action), the events that run it, the untrusted values in its env and matrix — and run the rules.
 *
 * A workflow is checked when any of its jobs, or any job of a workflow it calls, is privileged: the checker is aimed
 * at the workflows that deploy. Pure: the caller reads the files (and the local actions' names).
 */
import { expressionsIn, untrustedInput } from './expressions.js';
import { workflowOf, type Job, type Workflow } from './model.js';
import { WORKFLOW_RULES } from './rules/index.js';
import { actionRef, type JobContext } from './rules/rule.js';
import { workflowSyntax } from './rules/workflow-syntax.js';
import { parseSource } from './source.js';
import { withoutSuppressed } from './suppress.js';
import { findingOf, sortFindings, type Finding } from './types.js';

export interface WorkflowFile {
  /** The path findings name. */
  file: string;
  /** The file name in the workflows directory (`deploy.yml`): how `./.github/workflows/deploy.yml` finds it. */
  name: string;
  text: string;
}

export interface ParsedWorkflows {
  /** Valid workflows by file name. */
  workflows: Map<string, Workflow>;
  /** Syntax findings (files that are not valid YAML or not workflows). */
  findings: Finding[];
  files: number;
  /** Every file read, valid or not: file name → the path findings name. */
  paths: Map<string, string>;
}

export interface CheckOptions {
  /**
   * `owner/name` of the repository (from `--repository`): a call to `owner/name/.github/workflows/x.yml@ref` is this
   * repository's own reusable workflow, checked as `./.github/workflows/x.yml` when x.yml is among the files.
   */
  repository?: string;
  /** `name:` of the action.yml of each local action path (`./`, `./actions/deploy`), as read by the caller. */
  localActionNames?: ReadonlyMap<string, string | undefined>;
}

export interface CheckResult {
  findings: Finding[];
  workflows: Map<string, Workflow>;
  files: number;
  /** Every file read, valid or not: file name → the path findings name. */
  paths: Map<string, string>;
}

/** The name in action.yml that identifies the deploy-sts Action when used through a local path. */
export const DEPLOY_STS_ACTION_NAME = 'deploy-sts';
/** GitHub allows reusable workflows to nest this deep. */
const MAX_CALL_DEPTH = 10;
const LOCAL_WORKFLOW = /^\.\/\.github\/workflows\/([^/@]+\.ya?ml)$/;

export function parseWorkflows(files: readonly WorkflowFile[]): ParsedWorkflows {
  const workflows = new Map<string, Workflow>();
  const findings: Finding[] = [];
  for (const f of files) {
    const { source, problems } = parseSource(f.file, f.text);
    if (problems.length > 0) {
      for (const p of problems) findings.push(findingOf(workflowSyntax, { file: f.file, at: p.at, what: `YAML: ${p.message}` }));
      continue;
    }
    const workflow = workflowOf(source);
    if (workflow.invalid) {
      findings.push(findingOf(workflowSyntax, { file: f.file, at: workflow.invalid.pos, what: workflow.invalid.message }));
      continue;
    }
    workflows.set(f.name, workflow);
  }
  return { workflows, findings, files: files.length, paths: new Map(files.map((f) => [f.name, f.file])) };
}

/** Local action paths (`./`, `./path`) that the workflows use, normalised as `localActionNames` keys. */
export function localActionPaths(workflows: Iterable<Workflow>): string[] {
  const paths = new Set<string>();
  for (const w of workflows) for (const j of w.jobs) for (const s of j.steps) if (s.uses && actionRef(s.uses.value).kind === 'local') paths.add(normaliseLocal(s.uses.value));
  return [...paths].sort();
}

export function normaliseLocal(uses: string): string {
  return uses.trim().replace(/^\.\/*/, '').replace(/\/+$/, '');
}

/** The file name a job's `uses: ./.github/workflows/x.yml` calls, if it is a local reusable workflow. */
export function calledWorkflowName(job: Job): string | undefined {
  return job.uses ? LOCAL_WORKFLOW.exec(job.uses.value.trim())?.[1] : undefined;
}

/** The file name a job's `uses: owner/name/.github/workflows/x.yml@ref` calls when owner/name is `repository`. */
export function ownWorkflowName(job: Job, repository: string | undefined): string | undefined {
  if (!job.uses || !repository) return undefined;
  const m = /^([^/]+\/[^/]+)\/\.github\/workflows\/([^/@]+\.ya?ml)@\S+$/.exec(job.uses.value.trim());
  return m && m[1]!.toLowerCase() === repository.toLowerCase() ? m[2] : undefined;
}

interface Caller {
  ctx: JobContext;
  idToken: boolean;
  depth: number;
}

function isDeployStsStep(uses: string, options: CheckOptions): boolean {
  const ref = actionRef(uses);
  if (ref.kind === 'remote') return ref.name === 'deploy-sts/deploy-sts' || ref.name.startsWith('deploy-sts/deploy-sts/');
  if (ref.kind === 'local') return options.localActionNames?.get(normaliseLocal(uses)) === DEPLOY_STS_ACTION_NAME;
  return false;
}

function ancestorsOf(workflow: Workflow, job: Job): Job[] {
  const byId = new Map(workflow.jobs.map((j) => [j.id, j]));
  const out: Job[] = [];
  const seen = new Set<string>([job.id]);
  const queue = [...job.needs];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const j = byId.get(id);
    if (!j) continue;
    out.push(j);
    queue.push(...j.needs);
  }
  return out;
}

const carries = (value: string, tainted: Parameters<typeof untrustedInput>[1]) => expressionsIn(value).some((e) => untrustedInput(e.body, tainted) !== undefined);

/** Every job context of a workflow and of the local workflows it calls, plus calls to files that are not there. */
function contextsOf(workflow: Workflow, workflows: ReadonlyMap<string, Workflow>, options: CheckOptions, caller?: Caller): { contexts: JobContext[]; missing: Finding[] } {
  const contexts: JobContext[] = [];
  const missing: Finding[] = [];
  const events = caller ? caller.ctx.events : new Set(workflow.triggers.map((t) => t.event));
  // A called workflow's `inputs.NAME` carries what its caller passes in `with:`.
  const taintedInputs = new Set<string>();
  if (caller) {
    const from = caller.ctx;
    const tainted = { env: from.taintedEnv, matrix: from.taintedMatrix, inputs: from.taintedInputs };
    for (const [name, value] of from.job.with) if (carries(value.value, tainted)) taintedInputs.add(name);
  }
  const inputsOnly = { env: new Set<string>(), matrix: new Set<string>(), inputs: taintedInputs };
  const taintedEnvBase = [...workflow.env].filter(([, v]) => carries(v.value, inputsOnly)).map(([k]) => k);
  for (const job of workflow.jobs) {
    const own = job.permissions ?? workflow.permissions;
    let idToken: boolean;
    let source: string;
    if (caller) {
      idToken = caller.idToken && (own === undefined || own.idToken === 'write');
      source = own === undefined ? `inherited from job "${caller.ctx.job.id}" of ${caller.ctx.workflow.file}` : job.permissions ? 'its permissions, as allowed by its caller' : "the workflow's permissions, as allowed by its caller";
    } else {
      idToken = own?.idToken === 'write';
      const writeAll = own?.kind === 'write-all' ? ': write-all' : '';
      source = job.permissions ? `its permissions${writeAll}` : `the workflow's permissions${writeAll}`;
    }
    const action = job.steps.some((s) => s.uses !== undefined && isDeployStsStep(s.uses.value, options));
    const privilege = idToken ? `holds id-token: write (${source})` : action ? 'uses the deploy-sts Action' : undefined;
    const taintedEnv = new Set(taintedEnvBase);
    for (const [k, v] of job.env) {
      if (carries(v.value, inputsOnly)) taintedEnv.add(k);
      else taintedEnv.delete(k);
    }
    const taintedMatrix = new Set([...job.matrix].filter(([, values]) => values.some((v) => carries(v.value, inputsOnly))).map(([k]) => k));
    const ancestors = ancestorsOf(workflow, job);
    if (caller) ancestors.push(caller.ctx.job, ...caller.ctx.ancestors);
    const ctx: JobContext = {
      workflow,
      job,
      events,
      taintedEnv,
      taintedMatrix,
      taintedInputs,
      ancestors,
      via: caller ? ` of ${workflow.file} (called from job "${caller.ctx.job.id}" of ${caller.ctx.workflow.file})` : '',
      ...(privilege ? { privilege } : {}),
    };
    contexts.push(ctx);

    const called = calledWorkflowName(job);
    if (job.uses && job.uses.value.trim().startsWith('./') && !called) {
      missing.push(findingOf(workflowSyntax, { file: workflow.file, at: job.uses.pos, what: `job "${job.id}" calls ${job.uses.value}: a local reusable workflow must be ./.github/workflows/<file>.yml` }));
    }
    const self = called ? undefined : ownWorkflowName(job, options.repository);
    // This repository's workflow called by its full name: checked when it is here (the ref called may differ).
    if (self && workflows.has(self)) {
      const depth = (caller?.depth ?? 0) + 1;
      if (depth <= MAX_CALL_DEPTH) {
        const inner = contextsOf(workflows.get(self)!, workflows, options, { ctx, idToken, depth });
        contexts.push(...inner.contexts);
        missing.push(...inner.missing);
      }
      continue;
    }
    if (!called) continue;
    const target = workflows.get(called);
    if (!target) {
      missing.push(findingOf(workflowSyntax, { file: workflow.file, at: job.uses!.pos, what: `job "${job.id}" calls ${job.uses!.value}, which is not among the checked workflow files` }));
      continue;
    }
    const depth = (caller?.depth ?? 0) + 1;
    if (depth > MAX_CALL_DEPTH) continue;
    const inner = contextsOf(target, workflows, options, { ctx, idToken, depth });
    contexts.push(...inner.contexts);
    missing.push(...inner.missing);
  }
  return { contexts, missing };
}

/** Run every workflow rule over parsed workflows. */
export function checkParsedWorkflows(parsed: ParsedWorkflows, options: CheckOptions = {}): CheckResult {
  const findings: Finding[] = [...parsed.findings];
  for (const workflow of parsed.workflows.values()) {
    const { contexts, missing } = contextsOf(workflow, parsed.workflows, options);
    findings.push(...missing);
    if (!contexts.some((c) => c.privilege)) continue;
    const reached = new Set(contexts.map((c) => c.workflow));
    for (const rule of WORKFLOW_RULES) {
      if (rule.checkJob) {
        for (const ctx of contexts) {
          if (rule.jobs === 'privileged' && !ctx.privilege) continue;
          findings.push(...rule.checkJob(ctx).map((hit) => findingOf(rule, hit)));
        }
      }
      if (rule.checkWorkflow) {
        for (const w of reached) {
          // A reusable workflow (only `on: workflow_call`) takes its permissions and events from its caller.
          if (w.triggers.every((t) => t.event === 'workflow_call')) continue;
          findings.push(...rule.checkWorkflow(w, contexts.filter((c) => c.workflow === w)).map((hit) => findingOf(rule, hit)));
        }
      }
    }
  }
  const texts = new Map([...parsed.workflows.values()].map((w) => [w.file, w.source.text]));
  return { findings: sortFindings(withoutSuppressed(findings, texts)), workflows: parsed.workflows, files: parsed.files, paths: parsed.paths };
}

/** Parse and check workflow texts in one call (tests, tools). */
export function checkWorkflowTexts(files: readonly WorkflowFile[], options: CheckOptions = {}): CheckResult {
  return checkParsedWorkflows(parseWorkflows(files), options);
}
