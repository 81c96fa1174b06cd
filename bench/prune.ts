/**
 * Pruning must not stall requests. A busy service keeps every jti until its token expires, so each prune
 * deletes a large backlog. This fills the replay cache with expired rows and measures, while `prune()` runs, the
 * longest time the event loop could not run anything else — against one `DELETE` statement doing the same work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqlite } from '../exchange-service/storage/sqlite.js';
import { round } from './stats.js';

export interface PruneResult {
  rows: number;
  /** Chunked prune through the storage: total time and the longest event-loop stall. */
  pruneMs: number;
  longestStallMs: number;
  /** One DELETE statement for the same rows: its duration is one stall. */
  singleDeleteMs: number;
}

function fillExpired(file: string, rows: number): void {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA busy_timeout = 5000');
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO replay_log (issuer, jti, expires_at) SELECT 'http://127.0.0.1', lower(hex(randomblob(16))), 1000 + i % 1000 FROM n`,
  ).run(rows);
  db.close();
}

/** The longest gap between two turns of the event loop while `work` runs. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  running = false;
  return longest;
}

export async function benchPrune(work: string, rows: number): Promise<PruneResult> {
  const dir = mkdtempSync(join(work, 'prune-'));
  const file = join(dir, 'deploy-sts.sqlite');
  try {
    const storage = openSqlite(dir, { synchronous: 'FULL' });
    fillExpired(file, rows);
    let pruneMs = 0;
    const longestStallMs = await longestStall(async () => {
      const started = performance.now();
      await storage.prune(2_000_000_000);
      pruneMs = performance.now() - started;
    });
    await storage.close();

    fillExpired(file, rows);
    const db = new DatabaseSync(file);
    db.exec('PRAGMA synchronous = FULL');
    const started = performance.now();
    db.prepare('DELETE FROM replay_log WHERE expires_at < ?').run(2_000_000_000);
    const singleDeleteMs = performance.now() - started;
    db.close();
    return { rows, pruneMs: round(pruneMs, 1), longestStallMs: round(longestStallMs, 1), singleDeleteMs: round(singleDeleteMs, 1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
