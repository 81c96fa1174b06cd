/** `deploy-sts workflows check`: flags here, everything else in workflows/command.ts. */
import type { Command } from 'commander';
import { VERSION } from '../package-root.js';
import { DEFAULT_WORKFLOWS_DIR } from '../workflows/defaults.js';
import { UsageError, type CliContext } from './context.js';
import { examples, option } from './options.js';

interface WorkflowsFlags {
  policies?: string;
  repository?: string;
  json?: boolean;
  sarif?: string;
}

export function workflowsCommands(program: Command, ctx: CliContext): void {
  const workflows = program
    .command('workflows')
    .description("check a repository's GitHub Actions workflows for the mistakes that leak deploy rights")
    .addHelpText('after', examples('deploy-sts workflows check', 'deploy-sts workflows check .github/workflows --policies policies/ --repository acme/docs'));

  workflows
    .command('check')
    .description('find the workflow mistakes that hand a deploy token to code it should not reach; exit 1 on an error finding')
    .argument('[dir]', `the workflows directory (default: ${DEFAULT_WORKFLOWS_DIR})`)
    .argument('[extra...]')
    .addOption(option('--policies <dir>', "with --repository: cross-check the workflows against the sites' trust policies"))
    .addOption(option('--repository <owner/name>', 'with --policies: the repository whose workflows these are'))
    .addOption(option('--json', 'print the findings as JSON'))
    .addOption(option('--sarif <file>', 'also write the findings as SARIF (for GitHub code scanning)'))
    .addHelpText(
      'after',
      examples('deploy-sts workflows check', 'deploy-sts workflows check .github/workflows --policies policies/ --repository acme/docs', 'deploy-sts workflows check --sarif workflows.sarif'),
    )
    .action((dir: string | undefined, extra: string[], flags: WorkflowsFlags) =>
      ctx.run(async () => {
        if (extra.length > 0) throw new UsageError(`workflows check takes one directory, got ${extra.length + 1}: ${[dir, ...extra].join(' ')}`);
        // A short batch job, and V8 is told so: its efficiency mode defers the optimising compiler (TurboFan) and runs
        // the collector on fewer threads, which a run of a second never pays back — about 30% less CPU for 200 files,
        // the same wall time. Read by V8 as it goes, so setting it now counts. Only this verb: `serve` runs for days.
        (await import('node:v8')).setFlagsFromString('--efficiency-mode');
        // Loaded here, not at the top (as every verb's modules): the other verbs start without the checker and yaml.
        const { WorkflowsUsageError, workflowsCheck } = await import('../workflows/command.js');
        try {
          // Policies load as `policy check` and `serve` load them: with the configured trusted issuers.
          const policyLoad = flags.policies !== undefined ? await (await import('./policy.js')).policyLoadOptions(ctx.env) : undefined;
          return await workflowsCheck(
            { dir, policies: flags.policies, repository: flags.repository, json: Boolean(flags.json), sarif: flags.sarif, version: VERSION, ...(policyLoad ? { policyLoad } : {}) },
            { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) },
          );
        } catch (error) {
          if (error instanceof WorkflowsUsageError) throw new UsageError(error.message);
          throw error;
        }
      }),
    );
}
