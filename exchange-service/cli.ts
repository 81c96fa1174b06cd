#!/usr/bin/env node
/**
 * `deploy-sts` — the command line: serve, policy check|explain, tokens list|revoke, audit, keys rotate, dev token,
 * workflows check.
 * Thin: each verb parses its flags and calls the module that does the work.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, OPTION_NAMES, type StorageOptions, flagName, loadConfig, loadDevTokenConfig, loadPoliciesDir, loadStorageConfig, loadVerifierConfig } from './config.js';
import { devToken } from './dev-issuer.js';
import { explainCommand } from './explain.js';
import { RETIRED_KEY_GRACE_SECONDS } from './keys/key-ring.js';
import { openSigningKeys } from './keys/open.js';
import { checkPolicies } from './policy/load.js';
import { PolicyLoadError } from './policy/types.js';
import { CredentialsUsageError, credentialsCommand } from './credentials/command.js';
import { gatewayLine, mergeAudit } from './gateway/audit-view.js';
import { startService } from './service.js';
import { openStorage, type OpenedStorage } from './storage/open.js';
import { parseTime } from './time.js';
import { WorkflowsUsageError, workflowsCheck } from './workflows/command.js';

const USAGE = `deploy-sts — trade a GitHub Actions OIDC token for a short-lived, site-scoped deploy token

Usage:
  deploy-sts serve [--dev-defaults] [--port N] [--host H] [--data-dir D] [--policies D] [--issuer URL[,URL]]
                   [--jwks-file F] [--audience A] [--public-url URL] [--token-audience A] [--dev-issuer]
  deploy-sts policy check [DIR]
  deploy-sts policy explain --site S --token FILE [--jwks FILE] [--at TIME] [--policies D] [--audience A] [--json]
  deploy-sts tokens list [--site S] [--json]
  deploy-sts tokens revoke <jti>
  deploy-sts audit [--site S] [--since T] [--limit N] [--json]
  deploy-sts keys rotate
  deploy-sts credentials set NAME            (the secret on standard input, never as an argument)
  deploy-sts credentials list [--json]
  deploy-sts credentials remove NAME
  (tokens, audit, keys and credentials use DEPLOY_STS_DATABASE_URL when set, else the SQLite data directory)
  deploy-sts dev token [--claim k=v ...] [--audience A]
  deploy-sts workflows check [DIR] [--policies D --repository owner/name] [--json] [--sarif FILE]

Every option also reads DEPLOY_STS_<NAME> (e.g. --data-dir ↔ DEPLOY_STS_DATA_DIR). See README.md.`;

export class UsageError extends Error {}

/** `serve` takes a string flag for every configuration option but DEV_ISSUER, which is a switch. */
const SERVE_OPTIONS = OPTION_NAMES.filter((o) => o !== 'DEV_ISSUER');

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: ParseArgsConfig['options'], allowPositionals = false): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options }, allowPositionals, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

const flag = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Run `work` with the storage `serve` uses, from the same configuration (SQLite in the data directory, or
 * PostgreSQL), and close it after.
 */
async function withStorage<T>(dataDirFlag: unknown, env: NodeJS.ProcessEnv, work: (opened: OpenedStorage, config: StorageOptions) => Promise<T>): Promise<T> {
  const config = loadStorageConfig(env, { DATA_DIR: flag(dataDirFlag) });
  const opened = await openStorage(config);
  try {
    return await work(opened, config);
  } finally {
    await opened.storage.close();
  }
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

async function serve(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parse(args, {
    'dev-defaults': { type: 'boolean' },
    'dev-issuer': { type: 'boolean' },
    ...Object.fromEntries(SERVE_OPTIONS.map((o) => [flagName(o), { type: 'string' as const }])),
  });
  const flags: Record<string, string | undefined> = {};
  for (const o of SERVE_OPTIONS) flags[o] = values[flagName(o)] as string | undefined;
  if (values['dev-issuer']) flags.DEV_ISSUER = '1';
  const config = loadConfig(env, flags, Boolean(values['dev-defaults']));
  const service = await startService(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.logger.info({ event: 'shutdown', signal }, 'draining in-flight requests');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
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

async function policy(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'check') {
    const { positionals } = parse(rest, {}, true);
    const dir = positionals[0] ?? loadPoliciesDir(env);
    const result = await checkPolicies(dir);
    if (!result.ok) {
      process.stderr.write(`${new PolicyLoadError(result.problems).message}\n${result.problems.length} problem(s) in ${dir}\n`);
      return 1;
    }
    print(`ok: ${result.summary}`);
    return 0;
  }
  if (verb === 'explain') {
    const { values } = parse(rest, {
      site: { type: 'string' },
      token: { type: 'string' },
      jwks: { type: 'string' },
      at: { type: 'string' },
      policies: { type: 'string' },
      audience: { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
    });
    if (!values.site || !values.token) throw new UsageError('policy explain needs --site S and --token FILE');
    const verifier = loadVerifierConfig(env, { AUDIENCE: flag(values.audience), DATA_DIR: flag(values['data-dir']) });
    return explainCommand(
      {
        site: values.site as string,
        tokenFile: values.token as string,
        jwksFile: values.jwks as string | undefined,
        at: values.at === undefined ? undefined : parseTime(values.at as string, 'at'),
        policies: loadPoliciesDir(env, { POLICIES: flag(values.policies) }),
        audience: verifier.audience,
        dataDir: verifier.dataDir,
        issuers: verifier.issuers,
        json: Boolean(values.json),
      },
      print,
    );
  }
  throw new UsageError(`unknown command: policy ${verb ?? ''}`.trim());
}

async function tokens(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest, { site: { type: 'string' }, json: { type: 'boolean' }, 'data-dir': { type: 'string' } }, true);
  return withStorage(values['data-dir'], env, async ({ storage }) => {
    if (verb === 'list') {
      const list = await storage.listTokens({ site: values.site as string | undefined, now: Math.floor(Date.now() / 1000) });
      if (values.json) print(JSON.stringify(list, null, 2));
      else if (list.length === 0) print('no unexpired tokens');
      else {
        for (const t of list) {
          print(`${t.jti}  ${t.site.padEnd(20)} ${t.context.padEnd(10)} ${t.scope.padEnd(20)} ${t.repository}  expires ${new Date(t.expiresAt * 1000).toISOString()}${t.revoked ? '  REVOKED' : ''}`);
        }
      }
      return 0;
    }
    if (verb === 'revoke') {
      const jti = positionals[0];
      if (!jti) throw new UsageError('tokens revoke needs the jti of the token (see deploy-sts tokens list)');
      const token = await storage.findToken(jti);
      if (!token) {
        process.stderr.write(`no token with jti ${jti} was issued by this service (see deploy-sts tokens list)\n`);
        return 1;
      }
      await storage.revoke(jti, token.expiresAt);
      print(`revoked ${jti} (site ${token.site}, was valid until ${new Date(token.expiresAt * 1000).toISOString()})`);
      return 0;
    }
    throw new UsageError(`unknown command: tokens ${verb ?? ''}`.trim());
  });
}

async function audit(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parse(args, { site: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, 'data-dir': { type: 'string' } });
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive whole number');
  return withStorage(values['data-dir'], env, async ({ storage }) => {
    const since = values.since === undefined ? undefined : parseTime(values.since as string, 'since');
    const site = values.site as string | undefined;
    // Token decisions and deploy-gateway calls, one list (gateway/audit-view.ts).
    const rows = mergeAudit(await storage.listAudit({ site, since, limit }), await storage.gateway.listGatewayAudit({ site, since, limit }), limit);
    if (values.json) print(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) print('no audit records');
    else {
      for (const r of rows) {
        if (r.kind === 'gateway') {
          print(gatewayLine(r));
          continue;
        }
        print(`${new Date(r.time * 1000).toISOString()}  ${r.result.padEnd(7)} ${(r.site ?? '-').padEnd(16)} ${(r.rule ?? '-').padEnd(14)} ${(r.repository ?? '-').padEnd(20)} ${(r.eventName ?? '-').padEnd(20)} ${r.reason}${r.result === 'denied' ? `: ${r.detail}` : ''}`);
      }
    }
    return 0;
  });
}

async function keys(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'rotate') throw new UsageError(`unknown command: keys ${verb ?? ''}`.trim());
  const { values } = parse(rest, { 'data-dir': { type: 'string' } });
  return withStorage(values['data-dir'], env, async (opened, config) => {
    // Opening the ring creates the first key when there is none; the rotation then replaces it.
    const { keys: ring } = await openSigningKeys(opened, { keyEncryptionKeyFile: config.keyEncryptionKeyFile });
    const before = ring.active().kid;
    const fresh = await ring.rotate();
    print(`new signing key ${fresh.kid} is active; ${before} stays in the JWKS for ${RETIRED_KEY_GRACE_SECONDS} s so tokens it signed keep verifying. Running services (every replica) pick the change up within 30 s.`);
    return 0;
  });
}

async function credentials(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [verb, ...rest] = args;
  if (rest.some((a) => /^--?(secret|token|password|value)(=|$)/i.test(a))) {
    throw new UsageError('credentials take the secret on standard input only, never as an argument (it would stay in shell history and be visible in ps): printf %s "$TOKEN" | deploy-sts credentials set NAME');
  }
  const { values, positionals } = parse(rest, { json: { type: 'boolean' }, 'data-dir': { type: 'string' } }, true);
  // The storage and key-encryption key `serve` uses; opened only once the secret has been read.
  const config = loadStorageConfig(env, { DATA_DIR: flag(values['data-dir']) });
  try {
    return await credentialsCommand(verb, positionals, Boolean(values.json), {
      stdin: process.stdin,
      stderr: process.stderr,
      print,
      kekFile: config.keyEncryptionKeyFile,
      storage: async () => (await openStorage(config)).storage,
    });
  } catch (error) {
    if (error instanceof CredentialsUsageError) throw new UsageError(error.message);
    throw error;
  }
}

async function dev(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'token') throw new UsageError(`unknown command: dev ${verb ?? ''}`.trim());
  const { values } = parse(rest, { claim: { type: 'string', multiple: true }, audience: { type: 'string' }, 'data-dir': { type: 'string' } });
  const overrides: Record<string, string> = {};
  for (const pair of (values.claim as string[] | undefined) ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--claim takes name=value (an empty value removes the claim), got ${JSON.stringify(pair)}`);
    overrides[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const { audience, dataDir } = loadDevTokenConfig(env, { AUDIENCE: flag(values.audience), DATA_DIR: flag(values['data-dir']) });
  print(await devToken(dataDir, audience, overrides));
  return 0;
}

/** `workflows check`: flags here, everything else in workflows/command.ts. */
async function workflows(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'check') throw new UsageError(`unknown command: workflows ${verb ?? ''}`.trim());
  const { values, positionals } = parse(rest, { policies: { type: 'string' }, repository: { type: 'string' }, json: { type: 'boolean' }, sarif: { type: 'string' } }, true);
  if (positionals.length > 1) throw new UsageError(`workflows check takes one directory, got ${positionals.length}: ${positionals.join(' ')}`);
  try {
    return await workflowsCheck(
      {
        dir: positionals[0],
        policies: values.policies as string | undefined,
        repository: values.repository as string | undefined,
        json: Boolean(values.json),
        sarif: values.sarif as string | undefined,
      },
      { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) },
    );
  } catch (error) {
    if (error instanceof WorkflowsUsageError) throw new UsageError(error.message);
    throw error;
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest, env);
      case 'policy':
        return await policy(rest, env);
      case 'tokens':
        return await tokens(rest, env);
      case 'audit':
        return await audit(rest, env);
      case 'keys':
        return await keys(rest, env);
      case 'dev':
        return await dev(rest, env);
      case 'credentials':
        return await credentials(rest, env);
      case 'workflows':
        return await workflows(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`deploy-sts: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof PolicyLoadError) {
      process.stderr.write(`deploy-sts: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`deploy-sts: ${(error as Error).message}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
