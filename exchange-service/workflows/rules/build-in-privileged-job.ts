/**
 * DSTS103: a privileged job installs dependencies or runs a build. Every dependency's install script, every build
 * plugin and every test hook then runs with the right to mint deploy tokens.
 */
import { viaAlias, type Step, type Text } from '../model.js';
import type { Hit } from '../types.js';
import { AT_COMMAND, actionRef, jobLabel, matchPosition, scriptLines, stepLabel, type JobContext, type WorkflowRule } from './rule.js';

/** npm subcommands that run no package code (everything else — install and its aliases, ci, run, exec, rebuild … — may). */
const NPM_SAFE = String.raw`(?:-v|--version|-h|--help|help|view|v|info|show|whoami|config|c|get|set|ls|list|la|ll|ping|search|find|s|se|outdated|sbom|query|prefix|root|bin|doctor|fund|login|logout|token|owner|access|dist-tag|deprecate|unpublish|star|stars|team|org|profile|hook|completion|cache|pkg|diff)`;
const BUILD_COMMANDS = [
  String.raw`npm(?=\s|$)(?!\s+${NPM_SAFE}(?=\s|$|[;&|)]))\s+\S+`,
  String.raw`npx\s+\S`,
  String.raw`pnpm\s+(?!-v\b|--version\b)\S`,
  String.raw`pnpx\s+\S`,
  String.raw`yarn(?=\s|$|[;&|)])(?!\s+(?:-v|--version|info|why|config|--help)\b)`,
  String.raw`bun\s+(?:install|i|add|run|build|test|x|update|pm\s+trust|create)\b`,
  String.raw`bunx\s+\S`,
  String.raw`corepack\s+\S`,
  String.raw`deno\s+(?:install|i|task|add)\b`,
  String.raw`pip(?:3(?:\.\d+)?)?\s+install\b`,
  String.raw`(?:python(?:3(?:\.\d+)?)?|py)\s+(?:-m\s+pip\s+install|setup\.py)\b`,
  String.raw`pipx\s+(?:install|run)\b`,
  String.raw`(?:poetry|pipenv|pdm)\s+(?:install|run|sync|build)\b`,
  String.raw`uv\s+(?:sync|run|pip\s+install|build|tool\s+(?:install|run))\b`,
  String.raw`uvx\s+\S`,
  String.raw`hatch\s+(?:build|run|env\s+create)\b`,
  String.raw`(?:conda|mamba|micromamba)\s+(?:install|create|env\s+(?:create|update))\b`,
  String.raw`tox\b`,
  String.raw`nox\b`,
  String.raw`make\b`,
  String.raw`cmake\b`,
  String.raw`(?:(?:ba|z)?sh\s+)?(?:\.\/)?(?:gradlew|mvnw)\b`,
  String.raw`(?:gradle|mvn|sbt|ant)\b`,
  String.raw`bundle(?=\s|$|[;&|)])(?!\s+(?:-v|--version|config|info|list|show|outdated|help|--help)\b)`,
  String.raw`gem\s+install\b`,
  String.raw`rake\b`,
  String.raw`cargo\s+(?:build|b|run|r|install|test|t|check|c|clippy|doc|d|bench|nextest|publish|package|xtask)\b`,
  String.raw`go\s+(?:build|run|generate|test|install|vet)\b`,
  String.raw`composer\s+(?:install|update|run-script|run|require)\b`,
  String.raw`dotnet\s+(?:build|restore|run|test|publish|pack|tool\s+restore)\b`,
  String.raw`mix\s+(?:deps\.get|compile|test|run)\b`,
  String.raw`(?:hugo|jekyll\s+build|mkdocs\s+build|zola\s+build)\b`,
];
const BUILD = new RegExp(`${AT_COMMAND}(${BUILD_COMMANDS.join('|')})`);

/** Actions that install dependencies themselves: the input that turns it on or off, and whether it is on by default. */
const INSTALLING_ACTIONS: Record<string, { input?: string; off: string; byDefault: boolean }> = {
  'pnpm/action-setup': { input: 'run_install', off: 'false', byDefault: false },
  'bahmutov/npm-install': { off: '', byDefault: true },
  'cypress-io/github-action': { input: 'install', off: 'false', byDefault: true },
  'ramsey/composer-install': { off: '', byDefault: true },
  'borales/actions-yarn': { off: '', byDefault: true },
  'ruby/setup-ruby': { input: 'bundler-cache', off: 'false', byDefault: false },
  'github/codeql-action/autobuild': { off: '', byDefault: true },
};

/** The input (or the action) through which a step installs or builds, when it does. */
export function installingAction(step: Step): Text | undefined {
  if (!step.uses) return undefined;
  const ref = actionRef(step.uses.value);
  const known = ref.kind === 'remote' ? INSTALLING_ACTIONS[ref.name] : undefined;
  if (!known) return undefined;
  const input = known.input ? step.with.get(known.input) : undefined;
  if (!input) return known.byDefault ? step.uses : undefined;
  const value = input.value.trim().toLowerCase();
  return value === '' ? (known.byDefault ? step.uses : undefined) : value === known.off ? undefined : input;
}

export const buildInPrivilegedJob: WorkflowRule = {
  id: 'DSTS103',
  name: 'build-in-privileged-job',
  severity: 'error',
  jobs: 'privileged',
  summary: 'A job that holds id-token: write or uses the deploy-sts Action installs dependencies or builds (npm ci, yarn, pnpm i, pip install, make, ./gradlew, …).',
  why: 'Installing and building run code you did not review — every dependency\'s install script, build plugins, test hooks — and here that code can request the job\'s OIDC token and mint deploy tokens.',
  fix: 'Build in a job without id-token that uploads the output with actions/upload-artifact, and deploy it from a job with id-token: write that only downloads the artifact and uploads the files (needs: build).',
  checkJob(ctx: JobContext): Hit[] {
    const hits: Hit[] = [];
    for (const step of ctx.job.steps) {
      const action = installingAction(step);
      if (action) {
        hits.push({ file: ctx.workflow.file, at: action.pos, what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} installs dependencies (${action === step.uses ? step.uses.value : `${[...step.with].find(([, t]) => t === action)?.[0]}: ${action.value}`})` });
      }
      const run = step.run;
      if (!run) continue;
      for (const line of scriptLines(run.value)) {
        const m = BUILD.exec(line.text);
        if (!m) continue;
        const command = m[1]!.trim();
        const index = line.offset + m.index + m[0].length - m[1]!.length;
        hits.push({
          file: ctx.workflow.file,
          at: matchPosition(ctx.workflow, run, index, command),
          what: `${jobLabel(ctx)} ${ctx.privilege}, and ${stepLabel(step)} runs \`${line.text.trim()}\`${viaAlias(run)}`,
        });
      }
    }
    return hits;
  },
};
