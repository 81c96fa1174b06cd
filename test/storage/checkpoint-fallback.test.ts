/**
 * When the checkpoint thread fails, SQLite's automatic checkpoints come back (storage/sqlite.ts "Checkpoints"): on
 * real files in temp dirs, with a real worker thread that fails the way a thread can — it dies after saying it is
 * ready, it throws, or every checkpoint it runs fails. The WAL must stay bounded, no write may be lost, and the
 * storage must still close: without the fallback nothing would checkpoint at all, and the WAL would grow with every
 * write.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { openSqlite } from '../../exchange-service/storage/sqlite.js';
import { sqliteFiles, walSize } from '../helpers/sqlite-files.js';
import { grantRecord } from '../postgres/support/records.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const MiB = 1024 * 1024;
/**
 * The thread starts after 200 commits (~10,000 exchanges at 50 in flight; SQLite checkpoints until then); the 30,000
 * after it would take a WAL nobody checkpoints far past WAL_BOUND (about 2 KB of WAL per exchange).
 */
const EXCHANGES = 40_000;
const IN_FLIGHT = 50;
/** SQLite's automatic checkpoint runs past 1,000 pages (4 MiB); a batch's commit can add a little more. */
const WAL_BOUND = 12 * MiB;

/**
 * Checkpoint threads that fail, as eval'd worker code (each starts as the real one does: it says it is ready), and
 * the cause the storage must report for each.
 */
const CAUSES = {
  'dies after saying it is ready': /^the thread exited \(code 3\)$/,
  'throws': /^the thread failed: checkpoint thread broke$/,
  'fails every checkpoint': /^a checkpoint failed: disk I\/O error$/,
} as const;
const FAILING_THREADS: Record<keyof typeof CAUSES, string> = {
  'dies after saying it is ready': `
    const { parentPort } = require('node:worker_threads');
    parentPort.postMessage({ ready: true });
    setTimeout(() => process.exit(3), 20);`,
  'throws': `
    const { parentPort } = require('node:worker_threads');
    parentPort.postMessage({ ready: true });
    parentPort.on('message', () => { throw new Error('checkpoint thread broke'); });`,
  'fails every checkpoint': `
    const { parentPort } = require('node:worker_threads');
    parentPort.postMessage({ ready: true });
    parentPort.on('message', (m) => { if (m !== 'close') parentPort.postMessage({ done: true, ok: false, error: 'disk I/O error' }); });`,
};

const files = sqliteFiles('deploy-sts-checkpoint-fallback-');

describe('when the checkpoint thread fails', () => {
  it.each(Object.keys(CAUSES) as (keyof typeof CAUSES)[])(
    'falls back to SQLite\'s own checkpoints when the thread %s: the WAL stays bounded and every write is kept',
    async (failure) => {
      const dir = files.dataDir();
      let started = 0;
      const causes: string[] = [];
      const storage = files.storage(openSqlite(dir, {
        synchronous: 'FULL',
        onCheckpointFallback: (cause) => causes.push(cause),
        checkpointThread: () => {
          started++;
          return new Worker(FAILING_THREADS[failure], { eval: true });
        },
      }));
      const other = files.connection(dir);

      let peak = 0;
      let next = 0;
      let firsts = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < EXCHANGES) {
            const jti = `jti-${next++}`;
            const use = await storage.recordExchange({ issuer: ISSUER, jti, expiresAt: 2_000_000_000 }, (u) => grantRecord({ detail: `${jti} ${u}` }));
            if (use === 'first') firsts++;
            if (started > 0) peak = Math.max(peak, walSize(dir));
          }
        }),
      );

      // A graceful shutdown must not wait for a thread that is gone (it waited forever before session 6).
      await Promise.race([storage.close(), new Promise((_, reject) => setTimeout(() => reject(new Error('close() hung on the dead thread')), 10_000))]);
      expect(started, 'the checkpoint thread was started (after the first commits)').toBe(1);
      // The operator is told once, with the cause (the service logs it as a warning).
      expect(causes).toHaveLength(1);
      expect(causes[0]).toMatch(CAUSES[failure]);
      expect(firsts).toBe(EXCHANGES);
      expect(peak, `the WAL peaked at ${(peak / MiB).toFixed(1)} MiB after the thread started`).toBeLessThan(WAL_BOUND);
      expect(Number((other.prepare('SELECT count(*) AS n FROM replay').get() as { n: number }).n)).toBe(EXCHANGES);
      expect(Number((other.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n)).toBe(EXCHANGES);
    },
    60_000,
  );
});
