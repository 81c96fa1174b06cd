/**
 * When the checkpoint thread fails, SQLite's automatic checkpoints come back (storage/sqlite.ts "Checkpoints"): on
 * real files in temp dirs, with a real worker thread that fails the ways a thread can — it dies, throws, fails or
 * never answers its checkpoints, exits or stalls before it is ready, or cannot be started. The WAL must stay bounded,
 * no write may be lost, the operator is told once why, and the storage must still close: without the fallback
 * nothing would checkpoint at all, and the WAL would grow with every write.
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
/**
 * SQLite's automatic checkpoint runs past 1,000 pages (4 MiB), and a batch's commit can add a little more. Without the
 * fallback the WAL reaches ~175 MiB here.
 */
const WAL_BOUND = 12 * MiB;

/**
 * How long the writer waits for a thread that does not start or a checkpoint that does not answer (default 10 s):
 * long enough here for a thread to start on a loaded CI machine, except where the case is the stall itself.
 */
const STALL_MS = 60_000;

/** A worker running `code` (eval'd, as the real checkpoint thread is). */
const thread = (code: string) => () => new Worker(`const { parentPort } = require('node:worker_threads');\n${code}`, { eval: true });

/** Checkpoint threads that fail the ways a thread can, and the cause the storage must report for each. */
const FAILURES = {
  'dies after saying it is ready': {
    start: thread(`parentPort.postMessage({ ready: true }); setTimeout(() => process.exit(3), 20);`),
    cause: /^the thread exited \(code 3\)$/,
  },
  'throws': {
    start: thread(`parentPort.postMessage({ ready: true }); parentPort.on('message', () => { throw new Error('checkpoint thread broke'); });`),
    cause: /^the thread failed: checkpoint thread broke$/,
  },
  'fails every checkpoint': {
    start: thread(`parentPort.postMessage({ ready: true });
      parentPort.on('message', (m) => { if (m !== 'close') parentPort.postMessage({ done: true, ok: false, error: 'disk I/O error' }); });`),
    cause: /^a checkpoint failed: disk I\/O error$/,
  },
  'never answers a checkpoint': {
    start: thread(`parentPort.postMessage({ ready: true }); parentPort.on('message', (m) => { if (m === 'close') process.exit(0); });`),
    cause: /^a checkpoint did not answer within 0\.5 s$/,
    stallMs: 500,
    // Half a second of writes at full speed lands in the WAL before the writer gives up on the thread.
    walBound: 64 * MiB,
  },
  'exits before it is ready': {
    start: thread(`process.exit(0);`),
    cause: /^the thread exited \(code 0\)$/,
  },
  'never says it is ready': {
    start: thread(`parentPort.on('message', (m) => { if (m === 'close') process.exit(0); });`),
    cause: /^the thread did not start within 0\.5 s$/,
    stallMs: 500,
  },
  'cannot be started': {
    start: (): Worker => {
      throw new Error('too many threads');
    },
    cause: /^the thread could not start: too many threads$/,
  },
} as const satisfies Record<string, { start: () => Worker; cause: RegExp; stallMs?: number; walBound?: number }>;

const files = sqliteFiles('deploy-sts-checkpoint-fallback-');

describe('when the checkpoint thread fails', () => {
  it.each(Object.keys(FAILURES) as (keyof typeof FAILURES)[])(
    'falls back to SQLite\'s own checkpoints when the thread %s: the WAL stays bounded and every write is kept',
    async (failure) => {
      const dir = files.dataDir();
      let started = 0;
      const causes: string[] = [];
      const storage = files.storage(openSqlite(dir, {
        synchronous: 'FULL',
        onCheckpointFallback: (cause) => causes.push(cause),
        checkpointStallMs: 'stallMs' in FAILURES[failure] ? FAILURES[failure].stallMs : STALL_MS,
        checkpointThread: () => {
          started++;
          return FAILURES[failure].start();
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
      expect(causes[0]).toMatch(FAILURES[failure].cause);
      expect(firsts).toBe(EXCHANGES);
      const bound = 'walBound' in FAILURES[failure] ? FAILURES[failure].walBound : WAL_BOUND;
      expect(peak, `the WAL peaked at ${(peak / MiB).toFixed(1)} MiB after the thread started`).toBeLessThan(bound);
      expect(Number((other.prepare('SELECT count(*) AS n FROM replay_log').get() as { n: number }).n)).toBe(EXCHANGES);
      expect(Number((other.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n)).toBe(EXCHANGES);
    },
    60_000,
  );

  it('makes a second close() wait for the first: neither returns while the database is still open', async () => {
    const dir = files.dataDir();
    const storage = files.storage(
      openSqlite(dir, {
        synchronous: 'FULL',
        // A thread that takes 300 ms to shut down.
        checkpointThread: thread(`parentPort.postMessage({ ready: true });
          parentPort.on('message', (m) => { if (m === 'close') setTimeout(() => process.exit(0), 300); else parentPort.postMessage({ done: true, ok: true, busy: 0, log: 0, checkpointed: 0 }); });`),
      }),
    );
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < 12_000) {
          const jti = `jti-${next++}`;
          await storage.recordExchange({ issuer: ISSUER, jti, expiresAt: 2_000_000_000 }, (u) => grantRecord({ detail: `${jti} ${u}` }));
        }
      }),
    );
    const order: string[] = [];
    const first = storage.close().then(() => order.push('first'));
    const second = storage.close().then(() => order.push('second'));
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    await expect(storage.recordExchange({ issuer: ISSUER, jti: 'after', expiresAt: 2_000_000_000 }, () => grantRecord({}))).rejects.toThrow(/closed/);
  });
});
