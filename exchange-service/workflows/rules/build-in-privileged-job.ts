/**
 * DSTS103: a privileged job installs dependencies or runs a build. Every dependency's install script, every build
 * plugin and every test hook then runs with the right to mint deploy tokens.
 */
import { viaAlias } from '../model.js';
import type { Hit } from '../types.js';
import { jobLabel, matchPosition, scriptLines, stepLabel, type JobContext, type WorkflowRule } from './rule.js';

/** A command word at command position: line start, after `;`, `&&`, `||`, `|`, `(`, `` ` ``, `then`, `do`, `sudo` … */
const AT_COMMAND = String.raw`(?:^|[;&|(\x60]|\b(?:then|do|else|sudo|exec|time|xargs|env)\s)\s*`;
const BUILD_COMMANDS = [
  String.raw`npm\s+(?:ci|install|i|it|isntall|add|run|run-script|rebuild|test|t|start|exec|x|pack|publish|explore)\b`,
  String.raw`npx\s+\S`,
  String.raw`pnpm\s+(?!-v\b|--version\b)\S`,
  String.raw`pnpx\s+\S`,
  String.raw`yarn(?=\s|$|[;&|)])(?!\s+(?:-v|--version|info|why|config|--help)\b)`,
  String.raw`bun\s+(?:install|i|add|run|build|test|x)\b`,
  String.raw`bunx\s+\S`,
  String.raw`corepack\s+\S`,
  String.raw`pip3?\s+install\b`,
  String.raw`python3?\s+(?:-m\s+pip\s+install|setup\.py)\b`,
  String.raw`(?:poetry|pipenv)\s+(?:install|run)\b`,
  String.raw`uv\s+(?:sync|run|pip\s+install)\b`,
  String.raw`tox\b`,
  String.raw`make\b`,
  String.raw`cmake\b`,
  String.raw`\.\/(?:gradlew|mvnw)\b`,
  String.raw`(?:gradle|mvn)\b`,
  String.raw`bundle\s+(?:install|exec)\b`,
  String.raw`rake\b`,
  String.raw`cargo\s+(?:build|run|install|test|xtask)\b`,
  String.raw`go\s+(?:build|run|generate|test|install)\b`,
  String.raw`composer\s+(?:install|update|run-script)\b`,
  String.raw`dotnet\s+(?:build|restore|run|test|publish)\b`,
  String.raw`(?:hugo|jekyll\s+build|mkdocs\s+build|zola\s+build)\b`,
];
const BUILD = new RegExp(`${AT_COMMAND}(${BUILD_COMMANDS.join('|')})`);

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
