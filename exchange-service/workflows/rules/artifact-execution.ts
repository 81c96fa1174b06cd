/**
 * DSTS102: a privileged job executes or sources files from a downloaded artifact. An artifact is whatever the job
 * that uploaded it produced — for fork previews, whatever the pull request's build produced: it is data, never code.
 */
import { viaAlias, type Step } from '../model.js';
import type { Hit } from '../types.js';
import { AT_COMMAND, actionRef, jobLabel, matchPosition, scriptLines, stepLabel, usesAction, type JobContext, type WorkflowRule } from './rule.js';

const DOWNLOAD_ACTIONS = ['actions/download-artifact', 'dawidd6/action-download-artifact'];
const INTERPRETERS = String.raw`(?:bash|sh|zsh|dash|ksh|source|\.|node|deno\s+run|bun|python3?|ruby|perl|php|pwsh|powershell|java\s+-jar|npx|chmod\s+\+x)`;
const escapeText = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The spellings of the runner's temporary directory and home, any of which a script may use for the other. */
const RUNNER_DIRS: [RegExp, string][] = [
  [/\$\{\{\s*runner\.temp\s*\}\}|\$\{?RUNNER_TEMP\}?/gi, String.raw`(?:\$\{\{\s*runner\.temp\s*\}\}|\$\{?RUNNER_TEMP\}?)`],
  [/\$\{?HOME\}?|~(?=\/|$)/g, String.raw`(?:\$\{?HOME\}?|~)`],
];
/** A directory as a pattern: escaped, with `${{ runner.temp }}` matching `$RUNNER_TEMP` and the reverse. */
function escape(dir: string): string {
  const parts: string[] = [];
  let rest = dir;
  for (;;) {
    let first: { index: number; length: number; pattern: string } | undefined;
    for (const [re, pattern] of RUNNER_DIRS) {
      re.lastIndex = 0;
      const m = re.exec(rest);
      if (m && (!first || m.index < first.index)) first = { index: m.index, length: m[0].length, pattern };
    }
    if (!first) break;
    parts.push(escapeText(rest.slice(0, first.index)), first.pattern);
    rest = rest.slice(first.index + first.length);
  }
  parts.push(escapeText(rest));
  return parts.join('');
}

/** Where an artifact lands, relative to the workspace, without `./` and trailing `/`; `` for the workspace itself. */
function normalise(path: string): string {
  return path
    .trim()
    .replace(/^["']|["']$/g, '')
    .replace(/^(?:\$\{\{\s*github\.workspace\s*\}\}|\$\{?GITHUB_WORKSPACE\}?)(?=\/|$)/i, '.')
    .replace(/^\.\/+/, '')
    .replace(/\/+$/, '')
    .replace(/^\.$/, '');
}

function downloadPath(step: Step): string | undefined {
  if (DOWNLOAD_ACTIONS.some((a) => usesAction(step, a))) return normalise(step.with.get('path')?.value ?? '.');
  // The API way (GitHub's own workflow_run example): github-script's downloadArtifact, or `gh api …/artifacts/…`,
  // written and unzipped anywhere in the workspace.
  const script = usesAction(step, 'actions/github-script') ? step.with.get('script')?.value : undefined;
  if (script && /\bdownloadArtifact\b/.test(script)) return '';
  if (step.run && /\bgh\s+api\b[^\n]*\/artifacts\b/.test(step.run.value)) return '';
  const m = step.run ? /\bgh\s+run\s+download\b([^\n]*)/.exec(step.run.value) : null;
  if (m) {
    const dir = /(?:-D|--dir)[\s=]+(\S+)/.exec(m[1]!);
    return normalise(dir?.[1] ?? '.');
  }
  return undefined;
}

/** A regex for a command line that runs something under `dir` ('' = anything relative in the workspace). */
function executes(dir: string): RegExp {
  const file = dir === '' ? String.raw`(?:\./)?[\w.-][\w./-]*\.(?:sh|bash|js|mjs|cjs|ts|py|rb|pl|php|ps1|jar)\b` : String.raw`(?:\./)?${escape(dir)}/\S+`;
  const direct = dir === '' ? String.raw`\./[\w.-][\w./-]*` : String.raw`\./${escape(dir)}/\S+|${escape(dir)}/\S+`;
  const any = dir === '' ? String.raw`[\w.-][\w./-]*` : String.raw`(?:\./)?${escape(dir)}/\S+`;
  const toEnv = String.raw`(?:cat|<|\$\(<)\s*["']?${any}[^\n]*\$\{?GITHUB_(?:ENV|PATH)\b`;
  // `eval "$(cat f)"`, `export $(cat f | xargs)`, `source <(cat f)`: the file's text becomes shell code or environment.
  const evaluated = String.raw`(?:eval|export|source|\.)\s+["']?(?:\$\(|<\()\s*(?:cat\s+|<\s*)["']?${any}`;
  // `. ./env`, `source ./env`: any file, extension or not.
  const sourced = String.raw`(?:source|\.)\s+["']?${dir === '' ? String.raw`\./\S+` : any}`;
  return new RegExp(`${AT_COMMAND}(${INTERPRETERS}\\s+["']?${file}|${sourced}|["']?(?:${direct}))|(${toEnv}|${evaluated})`);
}

export const artifactExecution: WorkflowRule = {
  id: 'DSTS102',
  name: 'artifact-execution',
  severity: 'error',
  jobs: 'privileged',
  summary: 'A privileged job executes, sources or loads into $GITHUB_ENV/$GITHUB_PATH a file from a downloaded artifact, or runs a local action from it.',
  why: 'An artifact holds whatever the job that uploaded it produced — for a pull request, whatever its code wrote — so running it runs the pull request\'s code with the job\'s OIDC token (artifact poisoning).',
  fix: 'Treat the artifact as data: download it into its own directory (path: site/), upload its files without running anything from it, and validate any value read from it (e.g. [[ "$pr" =~ ^[0-9]+$ ]]) before use.',
  checkJob(ctx: JobContext): Hit[] {
    const hits: Hit[] = [];
    const dirs: { dir: string; step: Step; pattern: RegExp }[] = [];
    for (const step of ctx.job.steps) {
      if (dirs.length > 0) {
        const local = step.uses && actionRef(step.uses.value).kind === 'local' ? normalise(step.uses.value) : undefined;
        const from = local !== undefined ? dirs.find((d) => d.dir === '' || local === d.dir || local.startsWith(`${d.dir}/`)) : undefined;
        if (from && step.uses) {
          hits.push({ file: ctx.workflow.file, at: step.uses.pos, what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} runs the local action ${step.uses.value} from the artifact downloaded by ${stepLabel(from.step)}` });
        }
        if (step.run) {
          for (const line of scriptLines(step.run.value)) {
            for (const d of dirs) {
              const m = d.pattern.exec(line.text);
              if (!m) continue;
              const needle = (m[1] ?? m[2]!).trim();
              const index = line.offset + line.text.indexOf(needle, m.index);
              hits.push({
                file: ctx.workflow.file,
                at: matchPosition(ctx.workflow, step.run, index, needle),
                what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} runs \`${line.text.trim()}\` on the artifact downloaded by ${stepLabel(d.step)} into ${d.dir === '' ? 'the workspace' : d.dir}${viaAlias(step.run)}`,
              });
              break;
            }
          }
        }
      }
      const dir = downloadPath(step);
      if (dir !== undefined) dirs.push({ dir, step, pattern: executes(dir) });
    }
    return hits;
  },
};
