/**
 * The database's share of an exchange, without HTTP: the writes of one exchange (`recordExchange`: the replay insert and the audit record in one write)
 * through the service's own PostgreSQL storage (`exchange-service/storage/postgres.ts`, its default pool of 10
 * connections) against the SQLite default (FULL, group commit), one at a time and 50 in flight. For PostgreSQL the
 * CPU is split: this process (the `pg` client) and the server's processes (from /proc).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { migrate } from '../exchange-service/storage/pg-migrations.js';
import { createPool, postgresStorage } from '../exchange-service/storage/postgres.js';
import { openSqlite } from '../exchange-service/storage/sqlite.js';
import type { Storage } from '../exchange-service/storage/types.js';
import { auditRecord } from './micro.js';
import type { TestPostgres } from '../testing/postgres.js';
import { round } from './stats.js';

export interface StorageRoundTrip {
  step: string;
  /** Wall-clock microseconds per operation (with `inFlight` running at once: wall time / operations). */
  us: number;
  /** CPU microseconds per operation in this process (the service's side: driver, pool, SQLite itself). */
  clientCpuUs: number;
  /** CPU microseconds per operation in PostgreSQL's processes; null for SQLite (it runs inside the client). */
  serverCpuUs: number | null;
}

async function timed(
  step: string,
  warm: number,
  total: number,
  inFlight: number,
  serverCpu: (() => number) | null,
  fn: (i: number) => Promise<unknown>,
): Promise<StorageRoundTrip> {
  let next = 0;
  const run = async (count: number) => {
    const end = next + count;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < end) await fn(next++);
      }),
    );
  };
  await run(warm); // connections opened, code optimised
  const server = serverCpu?.() ?? 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(total);
  const used = process.cpuUsage(cpu);
  return {
    step,
    us: round(((performance.now() - started) * 1000) / total, 1),
    clientCpuUs: round((used.user + used.system) / total, 1),
    serverCpuUs: serverCpu ? round(((serverCpu() - server) * 1e6) / total, 1) : null,
  };
}

/** The writes of one exchange: the replay insert and the audit record, in one storage write (recordExchange). */
const writes = (storage: Storage, issuer: string, prefix: string) => (i: number) =>
  storage.recordExchange({ issuer, jti: `${prefix}-${i}`, expiresAt: 2_000_000_000 }, () => auditRecord(i));

export async function benchStorageRoundTrips(postgres: TestPostgres, work: string, issuer: string): Promise<StorageRoundTrip[]> {
  const results: StorageRoundTrip[] = [];
  const pool = createPool(await postgres.createDatabase());
  const storage = postgresStorage(pool);
  try {
    await migrate(pool);
    const cpu = () => postgres.cpuSeconds();
    results.push(await timed('PostgreSQL: SELECT 1 (one round trip), 1 at a time', 500, 3000, 1, cpu, () => storage.ping()));
    results.push(await timed('PostgreSQL: replay insert + audit write, 1 at a time', 100, 300, 1, cpu, writes(storage, issuer, 'one')));
    results.push(await timed('PostgreSQL: replay insert + audit write, 50 in flight (pool of 10)', 500, 2000, 50, cpu, writes(storage, issuer, 'many')));
  } finally {
    await storage.close();
  }
  const dir = mkdtempSync(join(work, 'pg-compare-sqlite-'));
  const sqlite = openSqlite(dir, { synchronous: 'FULL' });
  try {
    results.push(await timed('SQLite (FULL, group commit): replay insert + audit write, 1 at a time', 100, 200, 1, null, writes(sqlite, issuer, 'one')));
    results.push(await timed('SQLite (FULL, group commit): replay insert + audit write, 50 in flight', 500, 3000, 50, null, writes(sqlite, issuer, 'many')));
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
