/**
 * `npm run bench:pair`: a short paired run for profiling and for comparing two builds — the bound (NORMAL) and the
 * service (default FULL, group commit) alternated, with CPU per exchange over the measured phase (the steady figure
 * on a busy machine). Much shorter than `npm run bench`: use it while changing the hot path.
 *
 * Environment: PAIR_ROUNDS (default 3), PAIR_REQUESTS measured per run (default 4000), PAIR_WARMUP (default 15,000),
 * PAIR_CLI=<path> a second build of the CLI measured as a third column (A/B), PAIR_RATE=<n>/s open loop instead of
 * closed, BENCH_PROFILE=<dir> writes a V8 CPU profile of every service run there, PAIR_NODE_FLAGS more node flags for the
 * service (e.g. `--heap-prof --heap-prof-dir=<dir>` for where it allocates), PAIR_OTHER_NODE_FLAGS node flags for
 * PAIR_CLI's column instead (an A/B of a flag: PAIR_CLI=build/exchange-service/cli.js), PAIR_OTHER_SYNCHRONOUS=NORMAL
 * PAIR_CLI's column at that durability.
 */
import { writeExamplePolicies } from '../testing/example-policies.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_AUDIENCE, newIssuerKey, startIssuer } from './issuer.js';
import { requestLines, ROOT, runLoad, startBound, startService, WARMUP_REQUESTS, type Server } from './processes.js';
import { median, round } from './stats.js';
import { signPool } from './token-pool.js';

const rounds = Number(process.env.PAIR_ROUNDS ?? 3);
const requests = Number(process.env.PAIR_REQUESTS ?? 4000);
/** As `npm run bench`: past V8's compilation of the hot paths. */
const warmup = Number(process.env.PAIR_WARMUP ?? WARMUP_REQUESTS);
const rate = process.env.PAIR_RATE ? Number(process.env.PAIR_RATE) : undefined;
const otherCli = process.env.PAIR_CLI;
const profileDir = process.env.BENCH_PROFILE;
/** Node flags of a service column: PAIR_OTHER_NODE_FLAGS for PAIR_CLI's column when set (an A/B of a flag), else PAIR_NODE_FLAGS. */
const flagsFor = (cli: string | undefined): string | undefined =>
  (cli ? process.env.PAIR_OTHER_NODE_FLAGS : undefined) ?? process.env.PAIR_NODE_FLAGS;
/** PAIR_OTHER_SYNCHRONOUS=NORMAL: PAIR_CLI's column at that durability (e.g. the same build without its WAL syncs). */
const otherSynchronous = process.env.PAIR_OTHER_SYNCHRONOUS as 'NORMAL' | 'FULL' | undefined;
if (otherSynchronous !== undefined && otherSynchronous !== 'NORMAL' && otherSynchronous !== 'FULL') {
  throw new Error(`PAIR_OTHER_SYNCHRONOUS must be NORMAL or FULL, not ${JSON.stringify(otherSynchronous)}`);
}

interface Sample { rps: number; p50: number; p99: number; cpuUs: number; generatorUs: number; errors: number }

const work = mkdtempSync(join(tmpdir(), 'deploy-sts-pair-'));
const key = newIssuerKey();
const issuer = await startIssuer(key);
try {
  const pool = await signPool(warmup + requests, key, issuer.url);
  const tokensFile = join(work, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ tokens: pool.tokens, kinds: pool.kinds }));
  process.stderr.write(`signed ${pool.tokens.length} tokens in ${pool.signSeconds.toFixed(1)} s\n`);

  const measure = async (server: Server, check: 'decisions' | 'status'): Promise<Sample> => {
    let at = NaN;
    const result = await runLoad(
      { urls: [server.url], tokensFile, sites: ['docs'], concurrency: 50, warmup, requests, maxSeconds: 30, check, ...(rate ? { ratePerSecond: rate } : {}) },
      () => (at = server.cpuSeconds()),
    );
    const cpuUs = ((server.cpuSeconds() - at) * 1e6) / Math.max(1, result.requests);
    if (result.firstError) process.stderr.write(`  first error: ${result.firstError}\n`);
    return { rps: round(result.rps, 0), p50: round(result.latencyMs.p50), p99: round(result.latencyMs.p99), cpuUs: round(cpuUs, 0), generatorUs: round((result.generatorCpuSeconds * 1e6) / Math.max(1, result.requests), 0), errors: result.errors };
  };
  const columns: { name: string; run(): Promise<Sample> }[] = [
    {
      name: 'bound NORMAL',
      async run() {
        const dataDir = mkdtempSync(join(work, 'bound-'));
        const server = await startBound({ publicJwk: key.publicJwk, dataDir, synchronous: 'NORMAL', ...(profileDir ? { cpuProfileDir: profileDir } : {}) });
        try {
          return await measure(server, 'status');
        } finally {
          await server.stop();
          rmSync(dataDir, { recursive: true, force: true });
        }
      },
    },
    ...[undefined, otherCli].filter((cli, i) => i === 0 || cli).map((cli) => ({
      name: cli ? `service (${cli}${otherSynchronous ? `, ${otherSynchronous}` : ''})` : 'service FULL',
      async run() {
        const dataDir = mkdtempSync(join(work, 'data-'));
        // Logging as deployed: info, one line per request, into a file.
        const logFile = join(dataDir, 'log.ndjson');
        const server = await startService({
          issuer: issuer.url, audience: BENCH_AUDIENCE, policies: writeExamplePolicies(issuer.url, join(work, 'examples')), dataDir, logFile,
          ...(cli ? { cli } : {}), ...(profileDir ? { cpuProfileDir: profileDir } : {}),
          ...(cli && otherSynchronous ? { synchronous: otherSynchronous } : {}),
          ...(flagsFor(cli) ? { nodeFlags: flagsFor(cli)!.split(' ').filter(Boolean) } : {}),
        });
        try {
          return await measure(server, 'decisions');
        } finally {
          await server.stop();
          const lines = requestLines(logFile);
          if (lines !== warmup + requests) process.stderr.write(`  ${lines} request log lines for ${warmup + requests} requests\n`);
          rmSync(dataDir, { recursive: true, force: true });
        }
      },
    })),
  ];
  const samples = columns.map(() => [] as Sample[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, column] of columns.entries()) {
      const s = await column.run();
      samples[i]!.push(s);
      process.stderr.write(`round ${r + 1} ${column.name}: ${s.rps}/s p50 ${s.p50} p99 ${s.p99} ms, ${s.cpuUs} µs CPU/exch (the generator ${s.generatorUs}), ${s.errors} errors\n`);
    }
  }
  const med = (i: number, f: keyof Sample) => median(samples[i]!.map((s) => s[f]));
  for (const [i, column] of columns.entries()) {
    process.stdout.write(
      `${column.name.padEnd(28)} median ${med(i, 'rps')}/s p99 ${med(i, 'p99')} ms, CPU ${med(i, 'cpuUs')} µs/exch ` +
        `[${samples[i]!.map((s) => s.cpuUs).join(', ')}]${i > 0 ? `; CPU ×${round(med(i, 'cpuUs') / med(0, 'cpuUs'), 2)} of the bound, throughput ${round(med(i, 'rps') / med(0, 'rps'), 2)}` : ''}\n`,
    );
  }
} finally {
  await issuer.close();
  rmSync(work, { recursive: true, force: true });
}
