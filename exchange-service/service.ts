/**
 * Assemble and run the exchange service from a Config: policies, storage, signing keys, issuer key sources, the
 * HTTP app, and the housekeeping timers. `deploy-sts serve` and the tests both start it through here.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { describeConfig, type Config } from './config.js';
import { DEV_ISSUER, devKeySource } from './dev-issuer.js';
import { createApp } from './http/app.js';
import { KeyRing } from './keys/key-ring.js';
import { createMetrics, type Metrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { remoteKeySource, staticKeySource, type KeySource } from './oidc/jwks.js';
import { verifyGitHubToken } from './oidc/verify-oidc.js';
import { checkPolicies, checkPoliciesSettled, type PolicyLoadOptions } from './policy/load.js';
import { PolicyLoadError, type PolicySet } from './policy/types.js';
import { openStorage } from './storage/open.js';
import type { Storage } from './storage/types.js';

export interface RunningService {
  /** The public URL (issuer of minted tokens). */
  url: string;
  /** The audience GitHub tokens must carry. */
  audience: string;
  port: number;
  storage: Storage;
  keys: KeyRing;
  logger: Logger;
  metrics: Metrics;
  /** Re-read the policies directory; the old set stays in force on any error. */
  reloadPolicies(): Promise<{ ok: true; sites: number } | { ok: false; error: PolicyLoadError }>;
  /** Stop accepting connections, drain in-flight requests, close storage. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Write the human-readable start-up banner here (default: stderr). */
  banner?: (text: string) => void;
}

const SECONDS = () => Math.floor(Date.now() / 1000);
/** Replay and revocation rows are kept this long past their token's exp (the clock tolerance, doubled). */
const PRUNE_GRACE_SECONDS = 120;

/** The issuers policies bind: DEPLOY_STS_ISSUER, and the dev issuer when trusted (it counts, and stands in for GitHub's). */
export function policyLoadOptions(config: Pick<Config, 'issuers' | 'devIssuer'>): PolicyLoadOptions {
  return { issuers: config.issuers, ...(config.devIssuer ? { devIssuer: DEV_ISSUER } : {}) };
}

async function loadPolicySet(dir: string, options: PolicyLoadOptions, settled = false): Promise<PolicySet> {
  // A reload reads the directory until it reads the same twice (a file caught mid-write is never loaded).
  const result = settled ? await checkPoliciesSettled(dir, options) : await checkPolicies(dir, options);
  if (!result.ok) throw new PolicyLoadError(result.problems);
  return result.set;
}

/** The operator's introspection secret, hashed for constant-time comparison. Too short a secret is refused. */
async function readIntrospectSecret(file: string): Promise<Buffer> {
  let secret: string;
  try {
    secret = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new Error(`DEPLOY_STS_INTROSPECT_SECRET_FILE: cannot read ${file}: ${(error as Error).message}`);
  }
  if (secret.length < 32) {
    throw new Error(`DEPLOY_STS_INTROSPECT_SECRET_FILE: the secret in ${file} is shorter than 32 characters; make one with: openssl rand -base64 32`);
  }
  return createHash('sha256').update(secret).digest();
}

export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['token', 'access_token', 'subject_token', 'authorization', '*.token', '*.authorization'], censor: '[redacted]' },
  });
}

export async function startService(config: Config, options: StartOptions = {}): Promise<RunningService> {
  const logger = options.logger ?? createLogger(config.logLevel);
  let policies = await loadPolicySet(config.policies, policyLoadOptions(config));
  const { storage, keyStore, description: storageDescription } = await openStorage({ ...config, warn: (message) => logger.warn({ event: 'storage_warning' }, message) });
  let closing = false;
  try {
    const keys = await KeyRing.open(keyStore);
    const sources = new Map<string, KeySource>();
    for (const issuer of config.issuers) {
      sources.set(issuer, config.jwksFile ? await staticKeySource(issuer, config.jwksFile) : remoteKeySource(issuer));
    }
    if (config.devIssuer) sources.set(DEV_ISSUER, await devKeySource(config.dataDir));
    const introspectSecretHash = config.introspectSecretFile ? await readIntrospectSecret(config.introspectSecretFile) : undefined;

    const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const where = `${config.host}:${config.port}`;
        if (error.code === 'EADDRINUSE') reject(new Error(`cannot listen on ${where}: the port is already in use; stop the other process or choose another port (DEPLOY_STS_PORT / --port)`));
        else if (error.code === 'EACCES') reject(new Error(`cannot listen on ${where}: permission denied; use a port above 1023 or run behind a proxy`));
        else if (error.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${where}: no such address on this machine (DEPLOY_STS_HOST / --host)`));
        else reject(error);
      });
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = config.publicUrl ?? `http://${host}:${port}`;
    const audience = config.audience ?? url;

    const metrics = createMetrics(() => sources.values());
    const repoLimiter = new RateLimiter({ perMinute: config.rateLimitRepository });
    const app = createApp({
      metrics,
      ipLimiter: new RateLimiter({ perMinute: config.rateLimitIp }),
      admitRepository: (id) => repoLimiter.take(id),
      verify: (token) => verifyGitHubToken(token, { issuers: sources, audience }),
      policies: () => policies,
      storage,
      keys,
      issuer: url,
      tokenAudience: config.tokenAudience,
      now: SECONDS,
      subjectAudience: audience,
      introspectSecretHash,
      trustProxy: config.trustProxy,
      async ready() {
        if (closing) throw new Error('shutting down');
        await storage.ping();
      },
      log(level, message, fields) {
        logger[level](fields ?? {}, message);
      },
    });
    server.on('request', app);

    const timers = [
      setInterval(() => {
        storage.prune(SECONDS() - PRUNE_GRACE_SECONDS).catch((error: Error) => logger.warn({ error: error.message }, 'prune failed'));
      }, 60_000),
      setInterval(() => {
        keys.reload().catch((error: Error) => logger.warn({ error: error.message }, 'key reload failed'));
      }, 30_000),
    ];
    for (const t of timers) t.unref();

    const banner = options.banner ?? ((text: string) => process.stderr.write(text));
    const effective = { ...describeConfig(config, url, audience), storage: storageDescription };
    banner(
      `deploy-sts listening on ${url}\n` +
        Object.entries(effective).map(([k, v]) => `  ${k.padEnd(22)} ${v}`).join('\n') +
        `\n  policies loaded        ${policies.files.length} file(s): ${policies.files.map((f) => f.file).join(', ')}\n`,
    );
    logger.info({ event: 'started', ...effective, policy_files: policies.files.length }, 'deploy-sts started');

    // One reload at a time; the new set replaces the old only when every file validates.
    let reloading: Promise<unknown> = Promise.resolve();
    const reloadPolicies = (): Promise<{ ok: true; sites: number } | { ok: false; error: PolicyLoadError }> => {
      const run = reloading.then(async () => {
        try {
          policies = await loadPolicySet(config.policies, policyLoadOptions(config), true);
          metrics.policyReloads.inc({ result: 'ok' });
          logger.info({ event: 'policy_reload', files: policies.files.length }, 'policies reloaded');
          return { ok: true as const, sites: policies.siteCount() };
        } catch (error) {
          metrics.policyReloads.inc({ result: 'failed' });
          const loadError = error instanceof PolicyLoadError ? error : new PolicyLoadError([{ file: config.policies, line: 0, column: 0, message: (error as Error).message }]);
          logger.error(
            { event: 'policy_reload_failed', problems: loadError.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`) },
            'policy reload failed; the previous policies stay in force',
          );
          return { ok: false as const, error: loadError };
        }
      });
      reloading = run;
      return run;
    };
    let watcher: FSWatcher | undefined;
    let debounce: NodeJS.Timeout | undefined;
    if (config.watchPolicies) {
      try {
        watcher = watch(config.policies, () => {
          clearTimeout(debounce);
          debounce = setTimeout(() => void reloadPolicies(), 300);
        });
        watcher.on('error', (error) => logger.warn({ error: error.message }, 'policy directory watch failed; SIGHUP still reloads'));
      } catch (error) {
        logger.warn({ error: (error as Error).message }, 'cannot watch the policy directory; SIGHUP still reloads');
      }
    }

    return {
      url,
      audience,
      port,
      storage,
      keys,
      logger,
      metrics,
      reloadPolicies,
      async close() {
        if (closing) return;
        closing = true;
        watcher?.close();
        clearTimeout(debounce);
        for (const t of timers) clearInterval(t);
        // Drain: stop accepting, let in-flight requests finish, and drop each keep-alive connection once idle.
        const dropIdle = setInterval(() => server.closeIdleConnections(), 50);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        clearInterval(dropIdle);
        await storage.close();
      },
    };
  } catch (error) {
    await storage.close();
    throw error;
  }
}
