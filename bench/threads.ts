/**
 * `node build/bench/threads.js`: where the service's CPU goes by thread (main, libuv pool, workers, V8 helpers), from
 * /proc/<pid>/task, over one closed-loop run of the default service. For finding CPU the main-thread profile misses.
 */
import { writeExamplePolicies } from '../testing/example-policies.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_AUDIENCE, newIssuerKey, startIssuer } from './issuer.js';
import { ROOT, runLoad, startBound, startService, WARMUP_REQUESTS, type Server } from './processes.js';
import { signPool } from './token-pool.js';

const requests = Number(process.env.PAIR_REQUESTS ?? 6000);
/** PAIR_RATE=<n>: an open loop at n requests/s instead of the closed loop (where the CPU of a lightly loaded service goes). */
const rate = process.env.PAIR_RATE ? Number(process.env.PAIR_RATE) : undefined;
/** As `npm run bench`: past V8's compilation of the hot paths. */
const warmup = Number(process.env.PAIR_WARMUP ?? WARMUP_REQUESTS);

/** Bytes and calls the process wrote (/proc/<pid>/io: wchar, syscw): the commits, checkpoints, log and answers. */
function io(pid: number): { wchar: number; syscw: number } {
  const fields = Object.fromEntries(readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')));
  return { wchar: Number(fields.wchar), syscw: Number(fields.syscw) };
}

function threads(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '#');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    // The kernel's share of each thread (system calls: socket and file writes, fdatasync), as "<name> sys".
    byName.set(`${name} sys`, (byName.get(`${name} sys`) ?? 0) + Number(fields[12]) / 100);
  }
  return byName;
}

const work = mkdtempSync(join(tmpdir(), 'deploy-sts-threads-'));
const key = newIssuerKey();
const issuer = await startIssuer(key);
try {
  const pool = await signPool(warmup + requests, key, issuer.url);
  const tokensFile = join(work, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ tokens: pool.tokens, kinds: pool.kinds }));
  // THREADS_CLI=<path>: another build of the CLI measured after the service (A/B); THREADS_NODE_FLAGS: node flags for
  // that second run only (A/B of a flag, with THREADS_CLI=build/exchange-service/cli.js).
  const other = process.env.THREADS_CLI;
  const otherFlags = process.env.THREADS_NODE_FLAGS?.split(' ').filter(Boolean);
  for (const which of ['bound', 'service', ...(other ? ['other' as const] : [])] as const) {
    const dataDir = mkdtempSync(join(work, 'data-'));
    const server: Server =
      which === 'bound'
        ? await startBound({ publicJwk: key.publicJwk, dataDir, synchronous: 'NORMAL' })
        : await startService({
            issuer: issuer.url, audience: BENCH_AUDIENCE, policies: writeExamplePolicies(issuer.url, join(work, 'examples')), dataDir, logFile: join(dataDir, 'log'),
            ...(which === 'other' ? { cli: other!, ...(otherFlags ? { nodeFlags: otherFlags } : {}) } : {}),
          });
    let before = new Map<string, number>();
    let ioBefore = io(server.pid);
    const result = await runLoad(
      { urls: [server.url], tokensFile, sites: ['docs'], concurrency: 50, warmup, requests, maxSeconds: 30, check: which === 'bound' ? 'status' : 'decisions', ...(rate ? { ratePerSecond: rate } : {}) },
      () => {
        before = threads(server.pid);
        ioBefore = io(server.pid);
      },
    );
    const after = threads(server.pid);
    const ioAfter = io(server.pid);
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    const rows = [...after].map(([name, cpu]) => [name, ((cpu - (before.get(name) ?? 0)) * 1e6) / result.requests] as const).filter(([, us]) => us > 0.5);
    const total = rows.filter(([n]) => !n.endsWith(' sys')).reduce((a, [, us]) => a + us, 0);
    process.stdout.write(`${which === 'other' ? `${other}${otherFlags ? ` ${otherFlags.join(' ')}` : ''}` : which}: ${Math.round(result.rps)}/s, p50 ${result.latencyMs.p50.toFixed(1)} p99 ${result.latencyMs.p99.toFixed(1)} ms, ${Math.round(total)} µs CPU per exchange (writes ${((ioAfter.wchar - ioBefore.wchar) / 1024 / result.requests).toFixed(1)} KiB in ${((ioAfter.syscw - ioBefore.syscw) / result.requests).toFixed(2)} calls): ${rows.sort((a, b) => b[1] - a[1]).map(([n, us]) => `${n} ${Math.round(us)}`).join(', ')}\n`);
  }
} finally {
  await issuer.close();
  rmSync(work, { recursive: true, force: true });
}
