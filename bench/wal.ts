/**
 * The WAL under sustained writes (BENCHMARKS.md, issue 14, item 10): the storage micro-benchmark's load — the writes
 * of 22,000 exchanges (`recordExchange`), 50 in flight, `FULL`, group commit — with the WAL file's size sampled at
 * every answer. Prints the WAL's peak and final size, the database's size and CPU per exchange.
 * Run under the shared lock: `flock /work/wt/bench.lock npm run bench:wal` (BENCH_WAL_EXCHANGES, BENCH_WAL_SYNC).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, type Synchronous } from '../exchange-service/storage/sqlite.js';
import { auditRecord, subjectJti } from './micro.js';

const total = Number(process.env.BENCH_WAL_EXCHANGES ?? 22_000);
const synchronous = (process.env.BENCH_WAL_SYNC ?? 'FULL') as Synchronous;
const IN_FLIGHT = 50;

const size = (file: string) => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

const dir = mkdtempSync(join(tmpdir(), 'deploy-sts-bench-wal-'));
const file = join(dir, 'deploy-sts.sqlite');
const db = openSqlite(dir, { synchronous });
let peak = 0;
let slowest = 0;
let next = 0;
const load = loadavg()[0]!;
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < total) {
      const i = next++;
      const t = performance.now();
      await db.recordExchange(subjectJti('https://issuer.invalid'), () => auditRecord(i));
      slowest = Math.max(slowest, performance.now() - t);
      peak = Math.max(peak, size(`${file}-wal`));
    }
  }),
);
const wall = performance.now() - started;
const used = process.cpuUsage(cpu);
const finalWal = size(`${file}-wal`);
await db.close();
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
console.log(JSON.stringify({
  exchanges: total, synchronous, inFlight: IN_FLIGHT,
  walPeakMB: mb(peak), walAtEndMB: mb(finalWal), databaseMB: mb(size(file)),
  cpuUsPerExchange: Math.round((used.user + used.system) / total), wallUsPerExchange: Math.round((wall * 1000) / total),
  slowestAnswerMs: Math.round(slowest), load1Before: load.toFixed(2), load1After: loadavg()[0]!.toFixed(2),
}));
rmSync(dir, { recursive: true, force: true });
