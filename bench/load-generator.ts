/**
 * The load generator, run as its own process (it takes one core; the service gets the other). It reads the
 * pre-signed token pool, opens `concurrency` keep-alive connections and runs one request loop per connection:
 * a warm-up (not recorded), then the measured requests, each token used once. Given several servers (replicas),
 * it spreads the connections over them round-robin: connection k always talks to server k mod n. It checks every answer against
 * the expected decision and reports throughput, latency percentiles and errors to its parent over IPC.
 */
import { readFileSync } from 'node:fs';
import { Http1Connection } from './http1-client.js';
import { redactTokens, summarise, type LatencySummary } from './stats.js';
import type { TokenKind } from './issuer.js';

export interface LoadConfig {
  /**
   * Base URLs of the servers under test, e.g. [http://127.0.0.1:41234]. With several (replicas of one service),
   * connection k is pinned to urls[k % urls.length].
   */
  urls: string[];
  /** JSON file written by the parent: `{ tokens: string[], kinds: TokenKind[] }`. */
  tokensFile: string;
  /** Site slugs to spread requests over (request i goes to sites[i % length]). */
  sites: string[];
  concurrency: number;
  warmup: number;
  /** Most measured requests (the pool must hold warmup + requests tokens). */
  requests: number;
  /** The measured phase also ends after this long (no new request is started after it). */
  maxSeconds: number;
  /**
   * Open loop: start measured requests at this fixed rate instead of as fast as answers come back. Latency is
   * then counted from each request's scheduled start, so a stalled server is not hidden (no coordinated omission).
   */
  ratePerSecond?: number;
  /** `decisions`: grants must be 200 with the expected context, denials 400 invalid_target. `status`: any 200. */
  check: 'decisions' | 'status';
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: LatencySummary;
  errors: number;
  statuses: Record<string, number>;
  /** Measured requests answered by each server, in the order of `urls`. */
  requestsPerServer: number[];
  /** CPU seconds the generator itself used in the measured phase (user + system, all threads). */
  generatorCpuSeconds: number;
  firstError?: string;
}

/** What the generator tells its parent: the start of the measured phase, then the result (or why it failed). */
export type GeneratorMessage = { measuring: true } | { ok: true; result: LoadResult } | { ok: false; error: string };

const FORM_PREFIX =
  'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange' +
  '&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&resource=site%3A';

/** The longest one request may wait for its answer (every run's answers take milliseconds). */
const ANSWER_TIMEOUT_MS = 30_000;
const FORM_HEADERS = { 'Content-Type': 'application/x-www-form-urlencoded' };

function expected(kind: TokenKind, status: number, body: string): boolean {
  if (kind === 'denied') return status === 400 && body.includes('"invalid_target"');
  return status === 200 && body.includes(`"context":"${kind}"`);
}

async function run(config: LoadConfig): Promise<LoadResult> {
  const pool = JSON.parse(readFileSync(config.tokensFile, 'utf8')) as { tokens: string[]; kinds: TokenKind[] };
  const total = config.warmup + config.requests;
  if (pool.tokens.length < total) throw new Error(`the token pool holds ${pool.tokens.length} tokens; this run needs ${total}`);
  if (config.urls.length === 0) throw new Error('no server to load');
  const targets = config.urls.map((u) => new URL(u));
  // One keep-alive connection per request loop; loop k talks to targets[k % n] for the whole run.
  const connections = Array.from({ length: config.concurrency }, (_, k) => {
    const target = targets[k % targets.length]!;
    return new Http1Connection(target.hostname, Number(target.port));
  });
  // A request with no answer fails after ANSWER_TIMEOUT_MS (counted, with its reason) instead of hanging the run.
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const connection of connections) connection.expire(now, ANSWER_TIMEOUT_MS);
  }, 1_000);
  watchdog.unref();
  const latencies = new Float64Array(config.requests);
  let deadline = Infinity;
  const statuses: Record<string, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;

  let measuredFrom = 0;
  const scheduledAt = (i: number) =>
    config.ratePerSecond && i >= config.warmup ? measuredFrom + ((i - config.warmup) * 1000) / config.ratePerSecond : undefined;

  const perServer = config.urls.map(() => 0);
  const one = async (i: number, k: number): Promise<void> => {
    const at = scheduledAt(i);
    if (at !== undefined && at > performance.now()) await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
    if (i >= config.warmup) perServer[k % targets.length]!++;
    return send(i, connections[k]!, at ?? performance.now());
  };

  const send = async (i: number, connection: Http1Connection, started: number): Promise<void> => {
    const kind = pool.kinds[i]!;
    const body = `${FORM_PREFIX}${config.sites[i % config.sites.length]}&subject_token=${pool.tokens[i]}`;
    const fail = (why: string) => {
      if (i >= config.warmup) errors++;
      firstError ??= redactTokens(why);
    };
    try {
      const { status, body: text } = await connection.request('POST', '/token', FORM_HEADERS, body);
      if (i >= config.warmup) {
        latencies[i - config.warmup] = performance.now() - started;
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
      const ok = config.check === 'status' ? status === 200 : expected(kind, status, text);
      if (!ok) fail(`request ${i} (${kind}): HTTP ${status} ${text.slice(0, 300)}`);
    } catch (error) {
      if (i >= config.warmup) latencies[i - config.warmup] = performance.now() - started;
      fail(`request ${i}: ${(error as Error).message}`);
    }
  };

  const phase = async (until: number) => {
    const loop = async (_: unknown, k: number) => {
      while (next < until && performance.now() < deadline) await one(next++, k);
    };
    await Promise.all(Array.from({ length: config.concurrency }, loop));
  };

  await phase(config.warmup);
  process.send?.({ measuring: true } satisfies GeneratorMessage);
  const started = performance.now();
  measuredFrom = started;
  deadline = started + config.maxSeconds * 1000;
  const cpu = process.cpuUsage();
  await phase(total);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  clearInterval(watchdog);
  for (const connection of connections) connection.close();
  const done = next - config.warmup;
  return {
    requests: done,
    seconds,
    rps: done / seconds,
    latencyMs: summarise(latencies.subarray(0, done)),
    errors,
    statuses,
    requestsPerServer: perServer,
    generatorCpuSeconds: (used.user + used.system) / 1e6,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

process.once('message', (config: LoadConfig) => {
  run(config).then(
    (result) => process.send!({ ok: true, result } satisfies GeneratorMessage, () => process.exit(0)),
    (error: Error) => process.send!({ ok: false, error: error.stack ?? error.message } satisfies GeneratorMessage, () => process.exit(1)),
  );
});
