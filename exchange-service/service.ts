/**
 * Assemble and run the exchange service from a Config: policies, storage, signing keys, issuer key sources, the
 * HTTP app, and the housekeeping timers. `deploy-sts serve` and the tests both start it through here.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { describeConfig, type Config } from './config.js';
import { DEV_ISSUER, devKeySource } from './dev-issuer.js';
import { createApp } from './http/app.js';
import { listenMetrics, type MetricsListener } from './http/metrics-server.js';
import { startGateway } from './gateway/start.js';
import type { KeyRing } from './keys/key-ring.js';
import { openSigningKeys } from './keys/open.js';
import { createMetrics, type Metrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { requestLineWriter, type LineDestination, type RequestLog } from './request-log.js';
import { remoteKeySource, staticKeySource, type KeySource } from './oidc/jwks.js';
import { CLOCK_TOLERANCE_SECONDS, verifyGitHubToken } from './oidc/verify-oidc.js';
import { openLivePolicies, type ReloadResult } from './policy/live.js';
import type { PolicyLoadOptions } from './policy/load.js';
import { openStorage, type SqliteTestHooks } from './storage/open.js';
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
  /** Where GET /metrics is served (DEPLOY_STS_METRICS_LISTEN), or undefined when it is off. */
  metricsUrl: string | undefined;
  /** Re-read the policies directory; the old set stays in force on any error. */
  reloadPolicies(): Promise<ReloadResult>;
  /** Stop accepting connections, drain in-flight requests, close storage. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Log through this logger instead of the service's own (createLogger); the request line then goes through pino's generic path. */
  logger?: Logger;
  /** Where the service's own logger writes its lines (default: standard output, one write per turn); not with `logger`. */
  logDestination?: LineDestination;
  /** Write the human-readable start-up banner here (default: stderr). */
  banner?: (text: string) => void;
  /** Tests only: fail SQLite's checkpoint thread or hold its WAL syncs back, as a real disk or thread can. */
  sqliteTestHooks?: SqliteTestHooks | undefined;
}

const SECONDS = () => Math.floor(Date.now() / 1000);
/** The issuers policies bind: DEPLOY_STS_ISSUER, and the dev issuer when trusted (it counts, and stands in for GitHub's). */
export function policyLoadOptions(config: Pick<Config, 'issuers' | 'devIssuer'>): PolicyLoadOptions {
  return { issuers: config.issuers, ...(config.devIssuer ? { devIssuer: DEV_ISSUER } : {}) };
}

/**
 * Replay and revocation rows are kept this long past their token's exp (the clock tolerance, doubled): a replay row
 * must outlive the verifier's acceptance of its token, which ends CLOCK_TOLERANCE_SECONDS after the row's expiry.
 */
const PRUNE_GRACE_SECONDS = 2 * CLOCK_TOLERANCE_SECONDS;

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

/** Characters of lines a log keeps before writing them, whatever the turn (below sonic-boom's 16 KiB write size). */
const LOG_BUFFER_BYTES = 8 * 1024;
/** Log destinations with lines not yet written: written at exit, also after an uncaught exception. */
const unflushed = new Set<{ flushSync(): void }>();
let flushAtExit = false;

/**
 * Standard output, written once per turn of the event loop with every line of that turn: one write system call
 * instead of one per line (a group commit answers its whole batch in one turn, so one write carries tens of request
 * lines; a write of one line to a file cost ~40 µs on the benchmark machine). A line waits at most until the end of
 * the turn it was logged in (or until the turn's lines pass LOG_BUFFER_BYTES); at exit whatever is pending is written
 * synchronously.
 *
 * The turn's lines are kept in an array and joined once: handing each line to sonic-boom appended it to one growing
 * string whose UTF-8 length sonic-boom measures at every write, flattening the whole string each time (a tenth of the
 * service's allocations in the benchmark). They are written with sonic-boom's synchronous `write`, never its `flushSync()`:
 * `flushSync` also fsyncs the file (when standard output is a file), which blocked the event loop for a disk flush at
 * every turn — a fifth of the service's wall time in the benchmark. The log is not the durable record (the audit log
 * is, synced before each answer); its lines reach the file at each turn's write and survive a crash of the process,
 * as any log's do.
 */
function turnBatchedStdout(): LineDestination {
  const destination = pino.destination({ dest: 1, sync: true });
  let lines: string[] = [];
  let length = 0;
  let scheduled = false;
  const pending = {
    flushSync() {
      if (lines.length === 0) return;
      const text = lines.length === 1 ? lines[0]! : lines.join('');
      lines = [];
      length = 0;
      unflushed.delete(pending);
      // Synchronous (sync: true, no minimum length): one write system call now, retried by sonic-boom on EAGAIN and
      // after a partial write; no fsync (see above).
      destination.write(text);
    },
  };
  const flush = () => {
    scheduled = false;
    pending.flushSync();
  };
  if (!flushAtExit) {
    flushAtExit = true;
    process.once('exit', () => {
      for (const d of unflushed) d.flushSync();
    });
  }
  return {
    write(line: string) {
      lines.push(line);
      length += line.length;
      unflushed.add(pending);
      if (length >= LOG_BUFFER_BYTES) return pending.flushSync();
      if (scheduled) return;
      scheduled = true;
      setImmediate(flush);
    },
  };
}

export function createLogger(level: Config['logLevel'], destination: LineDestination = turnBatchedStdout()): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['token', 'access_token', 'subject_token', 'authorization', '*.token', '*.authorization'], censor: '[redacted]' },
    },
    destination,
  );
}

/**
 * The request line's writer. With the service's own logger, written directly in its format (request-log.ts: a
 * third of pino's CPU and a fifth of its allocations per line); with a caller's logger, through pino as any line.
 * The request line's fields are fixed and never a token (request id, route, decision): no redaction pass, which cost
 * about as much as writing the line (5-6 µs per request).
 */
function requestLog(logger: Logger, ownDestination: LineDestination | undefined): RequestLog {
  if (ownDestination !== undefined) return requestLineWriter(logger, ownDestination);
  const plain = logger.child({}, { redact: [] });
  return (level, fields) => plain[level](fields, 'request');
}

export async function startService(config: Config, options: StartOptions = {}): Promise<RunningService> {
  const ownDestination = options.logger === undefined ? (options.logDestination ?? turnBatchedStdout()) : undefined;
  const logger = options.logger ?? createLogger(config.logLevel, ownDestination);
  let metrics: Metrics | undefined;
  const policies = await openLivePolicies(config.policies, { load: policyLoadOptions(config), onReload: (result) => reported(result, metrics, logger) });
  const storageWarning = (message: string) => logger.warn({ event: 'storage_warning' }, message);
  const opened = await openStorage(config, { serve: true, warn: storageWarning, sqliteTestHooks: options.sqliteTestHooks });
  const { storage } = opened;
  let closing = false;
  try {
    const { keys, description: storageDescription } = await openSigningKeys(opened, {
      keyEncryptionKeyFile: config.keyEncryptionKeyFile,
      warn: storageWarning,
    });
    const sources = new Map<string, KeySource>();
    for (const issuer of config.issuers) {
      sources.set(issuer, config.jwksFile ? await staticKeySource(issuer, config.jwksFile) : remoteKeySource(issuer));
    }
    if (config.devIssuer) sources.set(DEV_ISSUER, await devKeySource(config.dataDir));
    const introspectSecretHash = config.introspectSecretFile ? await readIntrospectSecret(config.introspectSecretFile) : undefined;

    // Gateway uploads may take longer than 30 s; gateway/start.ts keeps the 30 s limit for every other route.
    const server = http.createServer({ requestTimeout: Math.max(30_000, config.gateway.timeoutMs), headersTimeout: 10_000, keepAliveTimeout: 5_000 });
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

    metrics = createMetrics(() => sources.values());
    const repoLimiter = new RateLimiter({ perMinute: config.rateLimitRepository });
    const app = createApp({
      metrics,
      ipLimiter: new RateLimiter({ perMinute: config.rateLimitIp }),
      admitRepository: (id) => repoLimiter.take(id),
      verify: (token) => verifyGitHubToken(token, { issuers: sources, audience }),
      policies: () => policies.current(),
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
      logRequest: requestLog(logger, ownDestination),
    });
    // The deploy gateway (gateway/): its own handler for /gateway/..., streaming, no Express body parsing.
    const gateway = await startGateway({ config, storage, keys, issuer: url, policies: () => policies.current(), logger });
    server.on('request', gateway.route(app));

    let metricsListener: MetricsListener | undefined;
    if (config.metricsListen) {
      try {
        metricsListener = await listenMetrics(metrics, config.metricsListen);
      } catch (error) {
        server.close();
        throw error;
      }
    }

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
        `  metrics                ${metricsListener ? metricsListener.url : 'off (DEPLOY_STS_METRICS_LISTEN=off)'}\n` +
        Object.entries(effective).map(([k, v]) => `  ${k.padEnd(22)} ${v}`).join('\n') +
        `\n  policies loaded        ${policies.current().files.length} file(s): ${policies.current().files.map((f) => f.file).join(', ')}\n`,
    );
    logger.info({ event: 'started', ...effective, policy_files: policies.current().files.length }, 'deploy-sts started');

    if (config.watchPolicies) policies.watch((message, error) => logger.warn({ error: error.message }, message));

    return {
      url,
      audience,
      port,
      storage,
      keys,
      logger,
      metrics,
      metricsUrl: metricsListener?.url,
      reloadPolicies: () => policies.reload(),
      async close() {
        if (closing) return;
        closing = true;
        policies.close();
        for (const t of timers) clearInterval(t);
        // Drain: stop accepting, let in-flight requests finish, and drop each keep-alive connection once idle.
        const dropIdle = setInterval(() => server.closeIdleConnections(), 50);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        clearInterval(dropIdle);
        await metricsListener?.close();
        await storage.close();
      },
    };
  } catch (error) {
    policies.close();
    await storage.close();
    throw error;
  }
}

/** A policy reload's result, in the metrics and the log. */
function reported(result: ReloadResult, metrics: Metrics | undefined, logger: Logger): void {
  metrics?.policyReloads.inc({ result: result.ok ? 'ok' : 'failed' });
  if (result.ok) {
    logger.info({ event: 'policy_reload', files: result.files }, 'policies reloaded');
  } else {
    logger.error(
      { event: 'policy_reload_failed', problems: result.error.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`) },
      'policy reload failed; the previous policies stay in force',
    );
  }
}
