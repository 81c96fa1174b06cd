/**
 * Attacks on the group-commit writer (storage/group-commit.ts) and its wiring in the SQLite storage: two WAL syncs in
 * flight on two descriptors, syncs spaced SYNC_SPACING_MS apart, durable writes queued until a sync can begin, a later
 * sync answering what an earlier one covers, a failed sync poisoning the writer.
 * The promises under attack: a write that must be durable is answered only after a sync that began after its commit
 * has ended well, and never after a sync failed; every write is answered (no hang: lanes, timers, holds, failures);
 * a key (a jti) is taken once; close() loses nothing queued; a failed batch never leaves a caller told "durable".
 * The syncs are stood in for (test/helpers/held-syncs.ts) where a test must hold, overlap or fail them; the real
 * storage (`openSqlite`) and the real service run with the real `fdatasync`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync } from 'node:sqlite';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BATCH, PATIENT_SYNC_MS } from '../../exchange-service/storage/group-commit.js';
import { syncsHeldOpen, turn, type LogEntry } from '../helpers/held-syncs.js';

type World = ReturnType<typeof syncsHeldOpen>;

/**
 * The orderings every answer must respect, read from the writer's log:
 * - a durable write answered well was committed before a sync began, and that sync ended well before the answer;
 * - nothing is answered well after any sync failed, and no sync begins after one failed;
 * - at most two syncs run at once, never two on one lane.
 */
function checkOrderings(log: readonly LogEntry[], durable: ReadonlySet<number>): void {
  const ranAt = new Map<number, number>();
  const startedAt = new Map<number, number>();
  const endedWellAt = new Map<number, number>();
  const running = new Map<number, number>(); // sync → lane
  let failedAt: number | undefined;
  log.forEach((entry, seq) => {
    switch (entry.kind) {
      case 'run':
        ranAt.set(entry.n, seq);
        break;
      case 'sync-start':
        expect(failedAt, `sync ${entry.sync} began after a sync failed (log ${seq})`).toBeUndefined();
        expect(running.size, `a third sync began beside two (log ${seq})`).toBeLessThan(2);
        expect([...running.values()], `two syncs on lane ${entry.lane} at once (log ${seq})`).not.toContain(entry.lane);
        running.set(entry.sync, entry.lane);
        startedAt.set(entry.sync, seq);
        break;
      case 'sync-end':
        running.delete(entry.sync);
        if (entry.ok) endedWellAt.set(entry.sync, seq);
        else failedAt ??= seq;
        break;
      case 'answer': {
        if (!entry.ok) break;
        expect(failedAt, `write ${entry.n} was answered after a sync failed (log ${seq})`).toBeUndefined();
        if (!durable.has(entry.n)) break;
        const ran = ranAt.get(entry.n)!;
        const proof = [...endedWellAt].some(([sync, ended]) => startedAt.get(sync)! > ran && ended < seq);
        expect(proof, `durable write ${entry.n} was answered (log ${seq}) with no sync begun after its commit (log ${ran}) and ended well`).toBe(true);
        break;
      }
    }
  });
}

/** Ends every running sync well until nothing runs or waits; gives up after `ms`. */
async function settleEverything(w: World, ms = 4 * PATIENT_SYNC_MS): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    for (const sync of w.running()) sync.end();
    await sleep(3);
    if (w.running().length === 0 && w.pending().length === 0) {
      await sleep(PATIENT_SYNC_MS / 10);
      if (w.running().length === 0) return;
    }
  }
}

describe('the group-commit writer under attack', () => {
  describe('any interleaving of writes, syncs, holds, locks and failures', () => {
    type Step =
      | { op: 'write'; kind: 'durable' | 'eager' | 'patient'; key: number | null; withinMs: number }
      | { op: 'end'; which: number; ok: boolean }
      | { op: 'wait'; ms: number }
      | { op: 'hold' }
      | { op: 'resume' }
      | { op: 'lock' }
      | { op: 'unlock' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('write' as const), kind: fc.constantFrom('durable' as const, 'durable' as const, 'eager' as const, 'patient' as const), key: fc.option(fc.integer({ min: 0, max: 3 })), withinMs: fc.integer({ min: 1, max: 15 }) }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('end' as const), which: fc.nat(3), ok: fc.integer({ min: 0, max: 9 }).map((x) => x < 8) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4 }) }) },
      { weight: 1, arbitrary: fc.constant({ op: 'hold' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'resume' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'lock' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'unlock' as const }) },
    );

    it('never answers a durable write early or after a failure, takes each key once, answers every write, and drains', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.boolean(), async (steps, drainAtEnd) => {
          let holding = false;
          const w = syncsHeldOpen({ syncSpacingMs: 2, held: () => holding });
          // Another connection that takes the write lock: the writer's BEGIN IMMEDIATE fails with SQLITE_BUSY.
          const other = new DatabaseSync(w.file);
          let locked = false;
          const durable = new Set<number>();
          const firsts = new Map<string, number>();
          let n = 0;
          try {
            for (const s of steps) {
              switch (s.op) {
                case 'write': {
                  const id = n++;
                  if (s.kind !== 'eager') durable.add(id);
                  const key = s.key === null ? undefined : `jti-${s.key}`;
                  void w
                    .write(id, { durable: s.kind !== 'eager', withinMs: s.kind === 'patient' ? s.withinMs : 0, ...(key === undefined ? {} : { key }) })
                    .then(
                      (first) => {
                        if (key !== undefined && first === true) {
                          expect(firsts.get(key), `key ${key} taken by writes ${firsts.get(key)} and ${id}`).toBeUndefined();
                          firsts.set(key, id);
                        }
                      },
                      () => {},
                    );
                  break;
                }
                case 'end': {
                  const running = w.running();
                  const sync = running[s.which % Math.max(1, running.length)];
                  if (sync) {
                    if (s.ok) sync.end();
                    else sync.fail('EIO');
                  }
                  break;
                }
                case 'wait':
                  await sleep(s.ms);
                  break;
                case 'hold':
                  holding = true;
                  break;
                case 'resume':
                  if (holding) {
                    holding = false;
                    w.writer.resume();
                  }
                  break;
                case 'lock':
                  if (!locked) {
                    other.exec('BEGIN IMMEDIATE');
                    locked = true;
                  }
                  break;
                case 'unlock':
                  if (locked) {
                    other.exec('ROLLBACK');
                    locked = false;
                  }
                  break;
              }
              await turn();
            }
            if (locked) other.exec('ROLLBACK');
            locked = false;
            if (holding) {
              holding = false;
              w.writer.resume();
            }
            let drained = false;
            if (drainAtEnd) void w.writer.drain().then(() => (drained = true));
            await settleEverything(w);
            expect(w.pending(), 'writes never answered').toEqual([]);
            if (drainAtEnd) expect(drained, 'drain never resolved').toBe(true);
            checkOrderings(w.log, durable);
            // Every write answered well is stored.
            const stored = new Set((w.db.prepare('SELECT n FROM t').all() as { n: number }[]).map((r) => Number(r.n)));
            for (let i = 0; i < n; i++) if (w.state(i) === 'resolved') expect(stored.has(i), `write ${i} answered but not stored`).toBe(true);
          } finally {
            if (locked) other.exec('ROLLBACK');
            other.close();
          }
        }),
        { numRuns: Number(process.env.GC_RUNS ?? 60) },
      );
    });
  });
});
