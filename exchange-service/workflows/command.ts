/**
 * `deploy-sts workflows check [DIR] [--policies DIR --repository owner/name] [--json] [--sarif FILE]`: the I/O
 * around the pure checker — read the workflow files (and the names of the local actions they use), load the
 * policies with the service's own loader, print the report, write SARIF. Returns the exit status.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { PolicyLoadOptions } from '../policy/load.js';
import { PolicyLoadError } from '../policy/types.js';
import { checkParsedWorkflows, localActionPaths, parseWorkflows, type WorkflowFile } from './check.js';
import { DEFAULT_WORKFLOWS_DIR } from './defaults.js';
import type { PolicySourceText } from './policy-check.js';
import { exitCodeOf, jsonReport, textReport } from './report.js';
import { workflowSyntax } from './rules/workflow-syntax.js';
import { toSarif } from './sarif.js';
import { findingOf, sortFindings, type Finding } from './types.js';

export { DEFAULT_WORKFLOWS_DIR };
export const MAX_WORKFLOW_FILE_BYTES = 1024 * 1024;
const WORKFLOW_FILE = /\.ya?ml$/i;


/** A bad command line: the CLI prints it with the usage and exits 2. */
export class WorkflowsUsageError extends Error {
  override readonly name = 'WorkflowsUsageError';
}

export interface WorkflowsCheckOptions {
  dir?: string;
  policies?: string;
  repository?: string;
  json?: boolean;
  sarif?: string;
  /** How the policies are loaded (trusted issuers, the dev issuer): as `deploy-sts policy check` loads them. */
  policyLoad?: PolicyLoadOptions;
  /** Where local actions (`uses: ./…`) are resolved; default: two levels above DIR when DIR ends in .github/workflows, else the working directory. */
  root?: string;
  version?: string;
}

export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

function repoRootOf(dir: string): string {
  const normal = path.resolve(dir);
  return normal.endsWith(`${path.sep}.github${path.sep}workflows`) ? path.dirname(path.dirname(normal)) : process.cwd();
}

/** owner/name at the end of a git remote URL (https, ssh or scp-like), `.git` dropped. */
const REMOTE_REPOSITORY = /[/:]([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100}?)(?:\.git)?\/?$/;

/**
 * The owner/name of the repository the clone around `root` came from (its `origin` remote), used when --repository is
 * not given, and only to recognise this repository's own reusable workflows called by their full name. The URL itself
 * is never printed (a remote URL can carry a token). Undefined without git, a clone or an origin.
 */
function originRepository(root: string): string | undefined {
  try {
    const url = execFileSync('git', ['-C', root, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    const match = REMOTE_REPOSITORY.exec(url);
    return match ? `${match[1]}/${match[2]}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The workflow files of DIR. Read synchronously, on purpose: a command that does nothing else meanwhile, and 200
 * files read one awaited stat and readFile at a time cost 1,000 thread-pool round trips (60–270 ms on a loaded
 * machine, against 20–60 ms read in place).
 */
function readWorkflowDir(dir: string): { files: WorkflowFile[]; findings: Finding[] } {
  let names: string[];
  try {
    const info = statSync(dir);
    if (!info.isDirectory()) throw new WorkflowsUsageError(`${dir} is not a directory: pass the workflows directory (default ${DEFAULT_WORKFLOWS_DIR})`);
    // Dot files included: GitHub runs `.github/workflows/.deploy.yml` like any other workflow file.
    names = readdirSync(dir).filter((n) => WORKFLOW_FILE.test(n)).sort();
  } catch (error) {
    if (error instanceof WorkflowsUsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WorkflowsUsageError(`${dir} does not exist: run from the repository root, or pass the workflows directory (default ${DEFAULT_WORKFLOWS_DIR})`);
    throw new WorkflowsUsageError(`${dir} cannot be read: ${(error as Error).message}`);
  }
  if (names.length === 0) throw new WorkflowsUsageError(`${dir} has no workflow files (*.yml or *.yaml): pass the directory that holds them (default ${DEFAULT_WORKFLOWS_DIR})`);
  const files: WorkflowFile[] = [];
  const findings: Finding[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const name of names) {
    const file = path.join(dir, name);
    const problem = (what: string) => findings.push(findingOf(workflowSyntax, { file, at: { line: 1, column: 1 }, what }));
    try {
      // GitHub reads a symbolic link's own text (its target's path), not the target: the workflow is invalid there,
      // and the checker does not follow it out of the directory either.
      if (lstatSync(file).isSymbolicLink()) {
        problem(`the file is a symbolic link (to ${JSON.stringify(readlinkSync(file))}): GitHub does not follow it and reports an invalid workflow file; copy the workflow here instead`);
        continue;
      }
      const info = statSync(file);
      if (!info.isFile()) continue;
      if (info.size > MAX_WORKFLOW_FILE_BYTES) {
        problem(`the file is larger than ${MAX_WORKFLOW_FILE_BYTES} bytes`);
        continue;
      }
      files.push({ file, name, text: decoder.decode(readFileSync(file)) });
    } catch (error) {
      problem(error instanceof TypeError ? 'the file is not valid UTF-8' : `the file cannot be read: ${(error as Error).message}`);
    }
  }
  return { files, findings };
}

/** `name:` of each local action's action.yml (undefined when there is none or it cannot be read); read in place, as the workflows. */
function localActionNames(root: string, paths: readonly string[]): Map<string, string | undefined> {
  const names = new Map<string, string | undefined>();
  for (const p of paths) {
    let name: string | undefined;
    for (const file of ['action.yml', 'action.yaml']) {
      try {
        const actionFile = path.join(root, p, file);
        // Only a regular file of a workflow's size inside the repository (`uses: ./../x` or a link to /dev/zero is not read).
        if (path.relative(root, actionFile).startsWith('..')) break;
        const info = statSync(actionFile);
        if (!info.isFile() || info.size > MAX_WORKFLOW_FILE_BYTES) continue;
        const meta = parse(readFileSync(actionFile, 'utf8')) as { name?: unknown } | null;
        if (typeof meta?.name === 'string') name = meta.name;
        break;
      } catch {
        // absent or unreadable: not the deploy-sts Action as far as the check can tell
      }
    }
    names.set(p, name);
  }
  return names;
}

async function policyFindings(options: Required<Pick<WorkflowsCheckOptions, 'policies' | 'repository'>> & Pick<WorkflowsCheckOptions, 'policyLoad'>, checked: ReturnType<typeof checkParsedWorkflows>): Promise<Finding[]> {
  const { checkPolicies } = await import('../policy/load.js');
  const { crossCheckPolicies } = await import('./policy-check.js');
  const loaded = await checkPolicies(options.policies, options.policyLoad);
  if (!loaded.ok) throw new PolicyLoadError(loaded.problems);
  const texts = new Map<string, PolicySourceText>();
  for (const policy of loaded.set.files) {
    const display = path.join(options.policies, policy.file);
    texts.set(policy.file, { display, text: await readFile(display, 'utf8') });
  }
  return crossCheckPolicies({ policies: loaded.set.files, texts, repository: options.repository, workflows: checked.workflows, paths: checked.paths, findings: checked.findings });
}

export async function workflowsCheck(options: WorkflowsCheckOptions, out: Output): Promise<number> {
  if ((options.policies === undefined) !== (options.repository === undefined)) {
    throw new WorkflowsUsageError('--policies and --repository go together: the policies directory, and the owner/name of the repository whose workflows these are');
  }
  // The policy modules (and zod with them) are loaded only for the cross-check, keeping the plain check's start-up light.
  if (options.repository !== undefined && !(await import('../policy/schema.js')).REPOSITORY.test(options.repository)) {
    throw new WorkflowsUsageError(`--repository must be owner/name, e.g. acme/docs, got ${JSON.stringify(options.repository)}`);
  }
  if (options.sarif !== undefined && options.sarif.trim() === '') throw new WorkflowsUsageError('--sarif needs a file name, e.g. --sarif workflows.sarif');
  const dir = options.dir ?? DEFAULT_WORKFLOWS_DIR;
  const read = readWorkflowDir(dir);
  const parsed = parseWorkflows(read.files);
  parsed.findings.push(...read.findings);
  const root = options.root ?? repoRootOf(dir);
  const names = localActionNames(root, localActionPaths(parsed.workflows.values()));
  // Without --repository, the clone's origin tells which full-name calls are this repository's own workflows.
  const repository = options.repository ?? originRepository(root);
  const checked = checkParsedWorkflows(parsed, { localActionNames: names, ...(repository !== undefined ? { repository } : {}) });
  let findings = checked.findings;
  if (options.policies !== undefined && options.repository !== undefined) {
    findings = sortFindings([...findings, ...(await policyFindings({ policies: options.policies, repository: options.repository, policyLoad: options.policyLoad }, checked))]);
  }
  const files = read.files.length + read.findings.length;
  if (options.sarif !== undefined) {
    try {
      await writeFile(options.sarif, `${JSON.stringify(toSarif(findings, { ...(options.version ? { version: options.version } : {}) }), null, 2)}\n`);
    } catch (error) {
      out.stderr(`deploy-sts: cannot write the SARIF file ${options.sarif}: ${(error as Error).message}\n`);
      return 1;
    }
  }
  out.stdout(options.json ? jsonReport(findings, files) : textReport(findings, files));
  return exitCodeOf(findings);
}
