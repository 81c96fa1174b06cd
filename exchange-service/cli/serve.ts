/** `deploy-sts serve`: run the exchange service until SIGTERM/SIGINT; SIGHUP reloads policies and signing keys. */
import type { Command } from 'commander';
import { OPTION_NAMES, flagName, type OptionName } from '../option-names.js';
import { removePidFile, writePidFile } from '../pid-file.js';
import type { CliContext } from './context.js';
import { examples, option } from './options.js';

/** `--help` for every configuration option: its value's placeholder, what it does and its default (docs/operating.md, Configuration). */
export const SERVE_OPTION_HELP: Record<OptionName, { value: string; description: string; default?: string }> = {
  PORT: { value: 'n', description: 'TCP port (0: any free port)', default: '8080' },
  HOST: { value: 'address', description: 'address to bind', default: '127.0.0.1' },
  DATA_DIR: { value: 'dir', description: 'SQLite database, signing keys (mode 0600), dev issuer key', default: '.data' },
  POLICIES: { value: 'dir', description: 'directory of policy files (or one file)', default: 'required; the example policies with --dev-defaults' },
  ISSUER: { value: 'urls', description: 'trusted OIDC issuers, comma-separated (https:// only, except loopback)', default: 'https://token.actions.githubusercontent.com' },
  JWKS_FILE: { value: 'file', description: "verify with this JWK set file instead of the issuer's published keys (needs exactly one issuer)" },
  AUDIENCE: { value: 'aud', description: 'the exact audience GitHub tokens must carry', default: 'the public URL' },
  PUBLIC_URL: { value: 'url', description: 'the URL clients use; the iss of deploy tokens (required on a non-loopback address)', default: 'http://HOST:PORT' },
  TOKEN_AUDIENCE: { value: 'aud', description: 'the aud of deploy tokens (a policy file may override it)', default: 'deploy-api' },
  DEV_ISSUER: { value: '', description: 'trust the local dev issuer (deploy-sts dev token); refused unless bound to a loopback address', default: 'off; on with --dev-defaults' },
  INTROSPECT_SECRET_FILE: { value: 'file', description: 'file holding the operator secret deploy platforms use at /introspect (32+ characters)' },
  TRUST_PROXY: { value: 'n', description: 'how many reverse-proxy hops to trust for the client address', default: '0' },
  RATE_LIMIT_IP: { value: 'n', description: 'exchanges per minute per client address; 0 = unlimited', default: '1200' },
  RATE_LIMIT_REPOSITORY: { value: 'n', description: 'exchanges per minute per repository_id; 0 = unlimited', default: '120' },
  WATCH_POLICIES: { value: '0|1', description: 'reload policies when the directory changes (SIGHUP always reloads)', default: '1' },
  SYNCHRONOUS: { value: 'mode', description: 'SQLite durability: FULL survives power loss, NORMAL a process crash', default: 'FULL' },
  DATABASE_URL: { value: 'url', description: 'postgres://USER:PASSWORD@HOST:5432/DB: keep all state in PostgreSQL, shared by replicas', default: 'SQLite in the data directory' },
  KEY_ENCRYPTION_KEY_FILE: { value: 'file', description: 'file of 32 random bytes sealing the stored platform credentials and, with PostgreSQL, the signing keys' },
  LOG_LEVEL: { value: 'level', description: 'debug, info, warn, error or silent (JSON lines on stdout)', default: 'info' },
  NETLIFY_API_URL: { value: 'url', description: 'where the Netlify deploy gateway forwards (https:// only, except loopback; no redirect followed)', default: 'https://api.netlify.com/api/v1' },
  GATEWAY_MAX_BODY_BYTES: { value: 'n', description: 'largest request body the gateway streams through (one uploaded file); larger: 413', default: '1073741824 (1 GiB)' },
  GATEWAY_MAX_JSON_BYTES: { value: 'n', description: 'largest JSON body the gateway parses and rewrites, and JSON answer it inspects', default: '16777216 (16 MiB)' },
  GATEWAY_TIMEOUT_SECONDS: { value: 'n', description: 'longest one gateway request may take, upload and answer included; then 504', default: '600' },
  GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: { value: 'n', description: 'deploys one preview token may create through the gateway (replicas share the count); then 403; 0 = unlimited', default: '5' },
  GATEWAY_CALLS_PER_TOKEN: { value: 'n', description: 'gateway calls one token may have in flight at once (per replica); then 429 until some finish', default: '16' },
  METRICS_LISTEN: { value: 'host:port|off', description: 'where /metrics is served, apart from the public port (which answers 404 for it)', default: '127.0.0.1:9464' },
  PID_FILE: { value: 'file', description: 'write the PID here once listening (atomically), remove it on exit', default: 'none; DATA_DIR/deploy-sts.pid with --dev-defaults' },
};

/** Camel-cased commander key of an option (`DATA_DIR` → `dataDir`). */
const key = (o: string) => flagName(o).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** How long SIGTERM or SIGINT waits for in-flight requests and the storage before the process exits anyway (code 1). */
const SHUTDOWN_LIMIT_MS = 10_000;

async function serve(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  const values: Record<string, string | undefined> = {};
  for (const o of OPTION_NAMES) {
    const v = flags[key(o)];
    if (o === 'DEV_ISSUER') values[o] = v ? '1' : undefined;
    else values[o] = typeof v === 'string' ? v : undefined;
  }
  // Loaded here, not at the top (as every verb's modules): the others start without zod, the HTTP server, storage and metrics.
  const { loadConfig } = await import('../config.js');
  const config = loadConfig(env, values, Boolean(flags.devDefaults));
  const { startService } = await import('../service.js');
  const service = await startService(config);
  if (config.pidFile) {
    const file = config.pidFile;
    try {
      writePidFile(file);
    } catch (error) {
      // Nothing is served without its PID file: the listening server would otherwise keep the process alive.
      await service.close();
      throw error;
    }
    process.once('exit', () => removePidFile(file));
  }
  process.stderr.write(`  pid                    ${process.pid}${config.pidFile ? ` (in ${config.pidFile})` : ''}; reload policies and keys with: kill -HUP ${config.pidFile ? `"$(cat ${config.pidFile})"` : process.pid}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.logger.info({ event: 'shutdown', signal }, 'draining in-flight requests');
    const force = setTimeout(() => {
      // The logger's pending lines are written at exit.
      service.logger.error(
        { event: 'shutdown_forced' },
        `the service did not stop within ${SHUTDOWN_LIMIT_MS / 1000} s (a request still in flight, or a write-ahead log sync the disk has not answered); exiting with code 1`,
      );
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS);
    force.unref();
    service.close().then(
      () => process.exit(0),
      (error: Error) => {
        service.logger.error({ event: 'shutdown_failed', error: error.message }, 'the service could not close cleanly; exiting with code 1');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: reload the policies and the signing keys (a `keys rotate` run elsewhere).
  process.on('SIGHUP', () => {
    void service.reloadPolicies();
    service.keys.reload().then(
      () => service.logger.info({ event: 'keys_reload' }, 'signing keys reloaded'),
      (error: Error) => service.logger.error({ event: 'keys_reload_failed', error: error.message }, 'signing key reload failed; the current keys stay in force'),
    );
  });
  return new Promise<number>(() => {});
}

export function serveCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command('serve')
    .description('run the exchange service (until SIGTERM or SIGINT; SIGHUP reloads policies and signing keys)')
    .addOption(option('--dev-defaults', 'the embedded defaults of npm start: data in .data, the example policies, 127.0.0.1:8080, the dev issuer trusted'));
  for (const o of OPTION_NAMES) {
    const help = SERVE_OPTION_HELP[o];
    const flags = help.value ? `--${flagName(o)} <${help.value}>` : `--${flagName(o)}`;
    command.addOption(option(flags, help.description, { env: `DEPLOY_STS_${o}`, ...(help.default ? { default: help.default } : {}) }));
  }
  command
    .addHelpText(
      'after',
      examples(
        'deploy-sts serve --dev-defaults',
        'DEPLOY_STS_PUBLIC_URL=https://sts.example.com deploy-sts serve --host 0.0.0.0 --policies /etc/deploy-sts/policies --pid-file /run/deploy-sts/deploy-sts.pid',
      ),
    )
    .action((flags: Record<string, unknown>) => ctx.run(() => serve(flags, ctx.env)));
}
