/** `deploy-sts credentials set NAME | list | remove NAME`: the deploy gateway's stored platform credentials. */
import type { Command } from 'commander';
import { UsageError, type CliContext } from './context.js';
import { dataDirOption, examples, option } from './options.js';
import { print } from './output.js';

const SECRET_FLAG = /^--?(secret|token|password|value)(=|$)/i;
const NOTE = '\nUses DEPLOY_STS_DATABASE_URL (PostgreSQL) when set, else the SQLite database in the data directory; DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE seals stored credentials.\n';

/**
 * A secret must never be a command-line argument (shell history, `ps`): refused before anything is parsed, so no
 * error message can echo it.
 */
export function refuseSecretArguments(argv: readonly string[]): void {
  if (argv[0] === 'credentials' && argv.slice(1).some((a) => SECRET_FLAG.test(a))) {
    throw new UsageError('credentials take the secret on standard input only, never as an argument (it would stay in shell history and be visible in ps): printf %s "$TOKEN" | deploy-sts credentials set NAME');
  }
}

async function run(verb: 'set' | 'list' | 'remove', positionals: string[], flags: { json?: boolean; dataDir?: string }, env: NodeJS.ProcessEnv): Promise<number> {
  // The storage and key-encryption key `serve` uses; opened only once the secret has been read.
  const { loadStorageConfig } = await import('../config.js');
  const { CredentialsUsageError, credentialsCommand } = await import('../credentials/command.js');
  const config = loadStorageConfig(env, { DATA_DIR: flags.dataDir });
  try {
    return await credentialsCommand(verb, positionals, Boolean(flags.json), {
      stdin: process.stdin,
      stderr: process.stderr,
      print,
      kekFile: config.keyEncryptionKeyFile,
      storage: async () => (await (await import('../storage/open.js')).openStorage(config)).storage,
    });
  } catch (error) {
    if (error instanceof CredentialsUsageError) throw new UsageError(error.message);
    throw error;
  }
}

export function credentialsCommands(program: Command, ctx: CliContext): void {
  const credentials = program
    .command('credentials')
    .description("the deploy platforms' own tokens the deploy gateway uses (e.g. a Netlify personal access token): never printed")
    .addHelpText('after', `${examples('printf %s "$NETLIFY_TOKEN" | deploy-sts credentials set netlify-acme', 'deploy-sts credentials list')}${NOTE}`);

  credentials
    .command('set')
    .description('store a credential read from standard input: piped (one trailing newline trimmed) or typed with echo off; never an argument')
    .argument('<name>', 'the credential name, as the policy names it (upstream.netlify.credential)')
    // Extra words are taken so that a secret typed after the name is refused with the reason, not echoed back.
    .argument('[refused...]')
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('printf %s "$NETLIFY_TOKEN" | deploy-sts credentials set netlify-acme', 'deploy-sts credentials set netlify-acme   # then paste it (input hidden)')}${NOTE}`)
    .action((name: string, refused: string[], flags: { dataDir?: string }) => ctx.run(() => run('set', [name, ...refused], flags, ctx.env)));

  credentials
    .command('list')
    .description('stored credentials: name, created, last used, encryption — never the secret')
    .addOption(option('--json', 'print JSON (snake_case, as the HTTP API)'))
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('deploy-sts credentials list', 'deploy-sts credentials list --json')}${NOTE}`)
    .action((flags: { json?: boolean; dataDir?: string }) => ctx.run(() => run('list', [], flags, ctx.env)));

  credentials
    .command('remove')
    .description('delete one credential; sites whose policy names it get 503 from the gateway until it is set again')
    .argument('<name>', 'the credential name')
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('deploy-sts credentials remove netlify-acme')}${NOTE}`)
    .action((name: string, flags: { dataDir?: string }) => ctx.run(() => run('remove', [name], flags, ctx.env)));
}
