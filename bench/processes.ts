/**
 * Child processes of the benchmark: the service under test (the real CLI), the bound server, and the load
 * generator. Every child binds 127.0.0.1:0 and announces its URL; every child is stopped by the run that started it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { GeneratorMessage, LoadConfig, LoadResult } from './load-generator.js';

/**
 * Requests before the measured phase. V8 keeps compiling the service's hot paths (TurboFan, on its worker threads) for
 * about the first 12,500 requests: in a traced run, the compilations between requests 1,000 and 12,500 took 0.2–0.75 s
 * of worker-thread CPU per 2,500 requests (60–300 µs per exchange, once), and after 12,500 under 8 µs. The targets
 * are steady figures, so both the bound and the service warm up this long (the bound compiles less, being less code).
 */
export const WARMUP_REQUESTS = 15_000;

export const ROOT = resolve(import.meta.dirname, '..', '..');
const BENCH_BUILD = import.meta.dirname;

export interface Server {
  url: string;
  pid: number;
  /** Milliseconds from spawn to the listening announcement. */
  startMs: number;
  /** Everything the child wrote (its log lines, warnings, the start-up banner). */
  output(): string;
  /** Peak and current resident set size in bytes, from /proc/<pid>/status. */
  memory(): { peakRss: number; rss: number };
  /** CPU seconds (user + system) used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function readStatus(pid: number): { peakRss: number; rss: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { peakRss: kb('VmHWM'), rss: kb('VmRSS') };
}

const CLOCK_TICKS = 100;

function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * Start a Node child and wait until a line of its output matches `listening`, whose group 1 is the URL — unless
 * `url` is given (a service announcing its public URL rather than the address it binds).
 */
function startServer(args: string[], env: NodeJS.ProcessEnv, listening: RegExp, url?: string, stdoutFile?: string, timeoutMs = 60_000): Promise<Server> {
  const started = performance.now();
  const stdoutFd = stdoutFile ? openSync(stdoutFile, 'a') : undefined;
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  if (stdoutFd !== undefined) closeSync(stdoutFd); // the child has its own descriptor
  let out = '';
  let err = '';
  return new Promise<Server>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    let announced = false;
    const check = () => {
      if (announced) return;
      const match = listening.exec(out) ?? listening.exec(err);
      if (!match) return;
      announced = true;
      clearTimeout(timer);
      const startMs = performance.now() - started;
      const exited = new Promise<void>((done) => {
        if (child.exitCode !== null) done();
        else child.once('exit', () => done());
      });
      resolvePromise({
        url: url ?? match[1]!,
        pid: child.pid!,
        startMs,
        output: () => `${out}\n${err}`,
        memory: () => readStatus(child.pid!),
        cpuSeconds: () => readCpuSeconds(child.pid!),
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(force);
        },
      });
    };
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      check();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
      check();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code} before listening:\n${err}`));
    });
  });
}

export interface ServiceOptions {
  issuer: string;
  /** The audience subject tokens must carry; default the service's URL (as in a deployment without the variable). */
  audience?: string;
  policies: string;
  dataDir: string;
  synchronous?: 'NORMAL' | 'FULL';
  /** Write a V8 CPU profile of the service into this directory. */
  cpuProfileDir?: string;
  /** More flags for node (investigations, e.g. --trace-gc). */
  nodeFlags?: string[];
  /** More environment (e.g. MALLOC_ARENA_MAX). */
  env?: Record<string, string>;
  /** Another build of the CLI (to measure a change side by side); default build/exchange-service/cli.js. */
  cli?: string;
  /** Bind this loopback port instead of a free one chosen by the OS (needed with `publicUrl`, which hides the port). */
  port?: number;
  /** DEPLOY_STS_PUBLIC_URL: the URL the service announces and issues tokens as (replicas share one). */
  publicUrl?: string;
  /** DEPLOY_STS_DATABASE_URL: PostgreSQL instead of SQLite in the data directory. Holds a password: never printed. */
  databaseUrl?: string;
  /** DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: seals the signing keys kept in PostgreSQL. */
  keyEncryptionKeyFile?: string;
  /**
   * Log as deployed (DEPLOY_STS_LOG_LEVEL=info: one line per request) into this file, the service's stdout. Without
   * it the service logs at `warn` (no request lines) into a pipe.
   */
  logFile?: string;
}

/** The request lines of a service's log file (one per answered request). */
export function requestLines(logFile: string): number {
  let n = 0;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) if (line.includes('"msg":"request"')) n++;
  return n;
}

/** The real service: `node build/exchange-service/cli.js serve`, audit on, default storage, no rate limits. */
export function startService(options: ServiceOptions): Promise<Server> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DEPLOY_STS_ISSUER: options.issuer,
    ...(options.audience ? { DEPLOY_STS_AUDIENCE: options.audience } : {}),
    DEPLOY_STS_POLICIES: options.policies,
    DEPLOY_STS_DATA_DIR: options.dataDir,
    DEPLOY_STS_HOST: '127.0.0.1',
    DEPLOY_STS_PORT: String(options.port ?? 0),
    DEPLOY_STS_RATE_LIMIT_IP: '0',
    DEPLOY_STS_RATE_LIMIT_REPOSITORY: '0',
    DEPLOY_STS_LOG_LEVEL: options.logFile ? 'info' : 'warn',
    // Several services run at once (replicas, the gateway's two set-ups): no fixed metrics port to collide on.
    DEPLOY_STS_METRICS_LISTEN: 'off',
    ...(options.synchronous ? { DEPLOY_STS_SYNCHRONOUS: options.synchronous } : {}),
    ...(options.publicUrl ? { DEPLOY_STS_PUBLIC_URL: options.publicUrl } : {}),
    ...(options.databaseUrl ? { DEPLOY_STS_DATABASE_URL: options.databaseUrl } : {}),
    ...(options.keyEncryptionKeyFile ? { DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: options.keyEncryptionKeyFile } : {}),
    ...options.env,
  };
  const profile = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const bindUrl = options.port ? `http://127.0.0.1:${options.port}` : undefined;
  return startServer([...profile, ...(options.nodeFlags ?? []), options.cli ?? join(ROOT, 'build', 'exchange-service', 'cli.js'), 'serve'], env, /deploy-sts listening on (\S+)/, bindUrl, options.logFile);
}

/** bench/plain-relay.ts in its own process, relaying to `upstreamOrigin` (the gateway's floor in section 8). */
export function startPlainRelay(upstreamOrigin: string, cpuProfileDir?: string): Promise<Server> {
  const profile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];
  return startServer([...profile, join(BENCH_BUILD, 'plain-relay.js'), upstreamOrigin], { PATH: process.env.PATH }, /relay listening on (\S+)/);
}

export interface BoundOptions {
  /** The issuer's public JWK (RS256 verification key). */
  publicJwk: Record<string, unknown>;
  dataDir: string;
  synchronous: 'NORMAL' | 'FULL';
  /** Write a V8 CPU profile of the bound into this directory. */
  cpuProfileDir?: string;
  /** PostgreSQL instead of SQLite (a table made with BOUND_TABLE_SQL beforehand). Holds a password: never printed. */
  databaseUrl?: string;
}

/** The bound: bench/bound-server.ts in its own process. */
export function startBound(options: BoundOptions): Promise<Server> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    BOUND_PUBLIC_JWK: JSON.stringify(options.publicJwk),
    BOUND_DATA_DIR: options.dataDir,
    BOUND_SYNCHRONOUS: options.synchronous,
    ...(options.databaseUrl ? { BOUND_DATABASE_URL: options.databaseUrl } : {}),
  };
  const profile = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  return startServer([...profile, join(BENCH_BUILD, 'bound-server.js')], env, /bound listening on (\S+)/);
}

/** A loopback port nothing listens on right now (another process may take it before it is used: retry on failure). */

/**
 * Run the load generator in its own process and return what it measured. `onMeasuring` is called when the warm-up
 * is over (no request in flight) and the measured phase starts: to read the servers' CPU at that boundary.
 */
export function runLoad(config: LoadConfig, onMeasuring?: () => void): Promise<LoadResult> {
  const child = fork(join(BENCH_BUILD, 'load-generator.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<LoadResult>((resolvePromise, reject) => {
    let answered = false;
    child.on('message', (message: GeneratorMessage) => {
      if ('measuring' in message) {
        onMeasuring?.();
        return;
      }
      answered = true;
      if (message.ok) resolvePromise(message.result);
      else reject(new Error(`load generator failed: ${message.error}`));
    });
    child.once('exit', (code) => {
      if (!answered) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(config);
  });
}
