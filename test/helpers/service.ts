/**
 * Run the real exchange service for a test: in this process (`startService`) or as a child process of the built CLI
 * (`spawnService`, for crash and signal tests). Each gets a fresh data directory in a temp dir, binds 127.0.0.1:0,
 * and captures its log lines so tests can prove no token ever reaches them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../exchange-service/config.js';
import { startService as start, type RunningService } from '../../exchange-service/service.js';
import type { SqliteTestHooks } from '../../exchange-service/storage/open.js';
import { EXAMPLE_POLICIES, writeExamplePolicies } from '../../testing/example-policies.js';
import { DEFAULT_AUDIENCE, startIssuer, type TestIssuer } from './issuer.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export { EXAMPLE_POLICIES };

/**
 * The example policies, bound to another issuer (the test issuer's URL): a copy in a fresh temp directory, every
 * `issuer: https://token.actions.githubusercontent.com` replaced. Remove it with rmSync when done.
 */
export function examplePolicies(issuer: string, dir = tempDir('deploy-sts-examples-')): string {
  return writeExamplePolicies(issuer, dir);
}

export interface ServiceOptions {
  /** The trusted issuer URL (the test issuer's `url`). */
  issuer: string;
  /** Policies directory; default examples/policies, bound to `issuer` (see examplePolicies). */
  policies?: string;
  /** Audience GitHub tokens must carry; default DEFAULT_AUDIENCE. */
  audience?: string;
  /** Reuse a data directory (restarts); default a fresh temp dir. */
  dataDir?: string;
  /** More DEPLOY_STS_* variables. */
  env?: Record<string, string>;
  /** Fail SQLite's checkpoint thread or hold its WAL syncs back (storage/open.ts). */
  sqliteTestHooks?: SqliteTestHooks;
}

export interface TestService {
  url: string;
  audience: string;
  dataDir: string;
  service: RunningService;
  /** Every log line the service wrote. */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * A test issuer and a service trusting it, for the enclosing describe block (or the file): started before its tests and
 * stopped after them. Read `issuer` and `svc` inside the tests (they exist once the block's beforeAll has run).
 */
export function useIssuerAndService(options: Omit<ServiceOptions, 'issuer'> = {}): { readonly issuer: TestIssuer; readonly svc: TestService } {
  let issuer: TestIssuer | undefined;
  let svc: TestService | undefined;
  beforeAll(async () => {
    issuer = await startIssuer();
    svc = await startService({ ...options, issuer: issuer.url });
  });
  afterAll(async () => {
    await svc?.stop();
    await issuer?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useIssuerAndService: read issuer and svc inside a test, once beforeAll has run');
    return value;
  };
  return {
    get issuer() {
      return started(issuer);
    },
    get svc() {
      return started(svc);
    },
  };
}

export function tempDir(prefix = 'deploy-sts-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The example policies bound to the issuer, kept in the data directory (removed with it). */
function defaultPolicies(options: ServiceOptions, dataDir: string): string {
  if (options.policies !== undefined) return options.policies;
  return examplePolicies(options.issuer, join(dataDir, 'example-policies'));
}

function envFor(options: ServiceOptions, dataDir: string): Record<string, string> {
  return {
    DEPLOY_STS_ISSUER: options.issuer,
    DEPLOY_STS_PORT: '0',
    DEPLOY_STS_HOST: '127.0.0.1',
    DEPLOY_STS_DATA_DIR: dataDir,
    DEPLOY_STS_POLICIES: defaultPolicies(options, dataDir),
    DEPLOY_STS_AUDIENCE: options.audience ?? DEFAULT_AUDIENCE,
    // Metrics on a port of their own, any free one (the default 9464 would clash between tests).
    DEPLOY_STS_METRICS_LISTEN: '127.0.0.1:0',
    // Every line, debug included, in the service's own log format (its logger writes into `logs`).
    DEPLOY_STS_LOG_LEVEL: 'debug',
    ...options.env,
  };
}

export async function startService(options: ServiceOptions): Promise<TestService> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? tempDir();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  let service: RunningService;
  try {
    service = await start(loadConfig(envFor(options, dataDir)), { logDestination: sink, banner: (text) => logs.push(text), sqliteTestHooks: options.sqliteTestHooks });
  } catch (error) {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: service.url,
    audience: service.audience,
    dataDir,
    service,
    logs,
    async stop() {
      await service.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SpawnedService {
  url: string;
  dataDir: string;
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** SIGTERM and wait for exit; resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Run `node build/exchange-service/cli.js serve` (built by `npm test`) and wait until it listens. */
export async function spawnService(options: ServiceOptions & { dataDir: string }): Promise<SpawnedService> {
  const child = spawn(process.execPath, [join(ROOT, 'build', 'exchange-service', 'cli.js'), 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...envFor(options, options.dataDir) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.on('data', (d: Buffer) => stdout.push(d.toString('utf8')));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start: ${stderr.join('')}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr.push(d.toString('utf8'));
      const match = /listening on (\S+)/.exec(stderr.join(''));
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code}: ${stderr.join('')}`));
    });
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    url,
    dataDir: options.dataDir,
    child,
    stdout,
    stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** POST a form to the service; returns status, headers and parsed JSON. */
export async function postForm(
  url: string,
  fields: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const value of Array.isArray(v) ? v : [v]) body.append(k, value);
  const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const TOKEN_EXCHANGE = {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
  subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
} as const;

/** Exchange a subject token for site `site` (with optional extra fields). */
export function exchangeToken(url: string, subjectToken: string, site = 'docs', extra: Record<string, string> = {}) {
  return postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: subjectToken, resource: `site:${site}`, ...extra });
}
