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
import { closeSync, mkdirSync, openSync, readdirSync, readlinkSync, readFileSync, readSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseSync } from 'node:sqlite';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAX_BATCH, PATIENT_SYNC_MS } from '../../exchange-service/storage/group-commit.js';
import { openSqlite } from '../../exchange-service/storage/sqlite.js';
import { denialRecord, gatewayAuditRecord, grantRecord } from '../postgres/support/records.js';
import { exchangeToken, tempDir, useIssuerAndService } from '../helpers/service.js';
import { NO_RATE_LIMITS } from './support.js';
import { syncsHeldOpen, turn, type LogEntry } from '../helpers/held-syncs.js';

type World = ReturnType<typeof syncsHeldOpen>;

const DATABASE_FILE = 'deploy-sts.sqlite';

/** A data directory removed when the test ends. */
function dataDir(): string {
  const dir = tempDir('deploy-sts-attack-gc-');
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** This process's descriptors open on `path`, even once it is deleted (Linux: /proc/self/fd), with their access mode. */
function descriptorsOf(path: string): { fd: number; readOnly: boolean }[] {
  const found: { fd: number; readOnly: boolean }[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed since the listing (the listing's own descriptor)
    }
    if (target !== path && target !== `${path} (deleted)`) continue;
    const flags = /^flags:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'))![1]!;
    found.push({ fd: Number(name), readOnly: (parseInt(flags, 8) & 3) === 0 });
  }
  return found;
}

/** The file offset of one descriptor (Linux: /proc/self/fdinfo): two open files of one path each have their own. */
const offsetOf = (fd: number) => Number(/^pos:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]);

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

describe('group commit under attack', () => {
  describe('any interleaving of writes, syncs, holds, locks and failures', () => {
    type Step =
      | { op: 'write'; kind: 'durable' | 'eager' | 'patient'; key: number | null; withinMs: number }
      | { op: 'end'; which: number; ok: boolean }
      | { op: 'wait'; ms: number }
      | { op: 'hold' }
      | { op: 'resume' }
      | { op: 'lock' }
      | { op: 'unlock' }
      | { op: 'slow'; looks: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('write' as const), kind: fc.constantFrom('durable' as const, 'durable' as const, 'eager' as const, 'patient' as const), key: fc.option(fc.integer({ min: 0, max: 3 })), withinMs: fc.integer({ min: 1, max: 15 }) }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('end' as const), which: fc.nat(3), ok: fc.integer({ min: 0, max: 9 }).map((x) => x < 8) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4 }) }) },
      { weight: 1, arbitrary: fc.constant({ op: 'hold' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'resume' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'lock' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'unlock' as const }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('slow' as const), looks: fc.integer({ min: 1, max: 4 }) }) },
    );

    it('never answers a durable write early or after a failure, takes each key once, answers every write, and drains', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.boolean(), fc.constantFrom(0, 1, 2, 2, 5), async (steps, drainAtEnd, syncSpacingMs) => {
          let holding = false;
          // The writer's next looks at `held` each take 1.5 ms: time passes in the middle of its decisions, as it does
          // in production when a GC pause or another thread takes the CPU.
          let slowLooks = 0;
          const w = syncsHeldOpen({
            syncSpacingMs,
            held: () => {
              if (slowLooks > 0) {
                slowLooks--;
                const until = performance.now() + 1.5;
                while (performance.now() < until);
              }
              return holding;
            },
          });
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
                case 'slow':
                  slowLooks = s.looks;
                  break;
              }
              await turn();
            }
            if (locked) other.exec('ROLLBACK');
            locked = false;
            slowLooks = 0;
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
        // GC_RUNS=400 for a longer hunt.
        { numRuns: Number(process.env.GC_RUNS ?? 60) },
      );
    });
  });

  describe('two lanes', () => {
    it('never lets a sync that began before a commit answer it, though that commit rode along with a write answered at commit', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0 });
      void w.write(1);
      await turn();
      void w.write(2);
      await turn();
      expect(w.running().map((s) => s.lane)).toEqual([0, 1]);
      // Both lanes busy: a durable write waits; a write answered at commit brings it into a commit now.
      void w.write(3);
      void w.write(4, false);
      await turn();
      expect(w.rows()).toBe(4);
      expect(w.state(4)).toBe('resolved');
      // Both running syncs began before write 3's commit: their success proves nothing about it.
      w.syncs[1]!.end();
      w.syncs[0]!.end();
      await turn();
      expect([1, 2, 3].map(w.state)).toEqual(['resolved', 'resolved', 'pending']);
      expect(w.syncs).toHaveLength(3);
      expect(w.syncs[2]!.rows).toBe(4);
      w.syncs[2]!.end();
      await turn();
      expect(w.state(3)).toBe('resolved');
      checkOrderings(w.log, new Set([1, 2, 3]));
    });

    it('splits more than MAX_BATCH writes of one turn into batches, each answered only by a sync begun after it', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 1 });
      const total = 2 * MAX_BATCH + 7;
      for (let i = 0; i < total; i++) void w.write(i, i % 5 !== 0);
      await settleEverything(w);
      expect(w.pending()).toEqual([]);
      expect(w.rows()).toBe(total);
      const batches: number[] = [];
      let size = 0;
      for (const entry of w.log) {
        if (entry.kind === 'run') size++;
        if (entry.kind === 'commit') {
          batches.push(size);
          size = 0;
        }
      }
      expect(Math.max(...batches)).toBeLessThanOrEqual(MAX_BATCH);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(total);
      checkOrderings(w.log, new Set([...Array(total).keys()].filter((i) => i % 5 !== 0)));
    });
  });

  describe('the lane timer', () => {
    // Was a hole (fixed in group-commit.ts): pump() decided twice whether a sync may begin — once to commit the queue,
    // once to arm the lane timer — reading the clock each time. When the spacing ran out between the two (here a slow
    // `held`, in production a GC pause or a preempted thread), the first said "not yet" (no commit) and the second
    // "now" (no timer): the queued writes waited for an event that never came, and their callers (token requests) hung
    // until another request arrived. The burst through the real storage below hung in about every other run.
    it('commits a queued write even when the spacing runs out while the writer decides', async () => {
      let calls = 0;
      let spinUntil = 0;
      const w = syncsHeldOpen({
        syncSpacingMs: 20,
        held: () => {
          // The second look of one pump: let the spacing run out meanwhile.
          if (++calls === 2) while (performance.now() < spinUntil);
          return false;
        },
      });
      void w.write(1);
      await turn();
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
      calls = 0;
      spinUntil = w.syncs[0]!.startedAt + 21;
      void w.write(2);
      await sleep(100);
      expect(w.syncs).toHaveLength(2);
      w.syncs[1]!.end();
      await turn();
      expect(w.state(2)).toBe('resolved');
    });
  });

  describe('holds (bounding the WAL)', () => {
    it('keeps syncing what was committed while commits are held, and commits the held writes on resume', async () => {
      let holding = false;
      const w = syncsHeldOpen({ syncSpacingMs: 0, held: () => holding });
      void w.write(1);
      await turn();
      holding = true;
      void w.write(2);
      void w.write(3, false);
      await sleep(5);
      expect(w.rows()).toBe(1);
      w.syncs[0]!.end();
      await turn();
      expect([1, 2, 3].map(w.state)).toEqual(['resolved', 'pending', 'pending']);
      holding = false;
      w.writer.resume();
      await turn();
      expect(w.state(3)).toBe('resolved');
      expect(w.state(2)).toBe('pending');
      expect(w.syncs).toHaveLength(2);
      w.syncs[1]!.end();
      await turn();
      expect(w.state(2)).toBe('resolved');
      checkOrderings(w.log, new Set([1, 2]));
    });

    it('drain commits and syncs the writes still held, and resolves only once they are answered', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0, held: () => true });
      void w.write(1);
      void w.write(2, { withinMs: 50 });
      await turn();
      expect(w.rows()).toBe(0);
      let drained = false;
      void w.writer.drain().then(() => (drained = true));
      await turn();
      expect(w.rows()).toBe(2);
      expect(drained).toBe(false);
      w.syncs[0]!.end();
      await turn();
      expect(drained).toBe(true);
      expect([1, 2].map(w.state)).toEqual(['resolved', 'resolved']);
      checkOrderings(w.log, new Set([1, 2]));
    });
  });

  describe('a write nobody waits for (withinMs)', () => {
    it('is answered only after a sync begun after its commit, and at the latest about PATIENT_SYNC_MS later with no company', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0 });
      void w.write(1, { withinMs: 5 });
      await sleep(15);
      expect(w.rows()).toBe(1);
      expect(w.syncs).toHaveLength(0);
      await sleep(PATIENT_SYNC_MS + 50);
      expect(w.syncs).toHaveLength(1);
      expect(w.state(1)).toBe('pending');
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
      checkOrderings(w.log, new Set([1]));
    });
  });

  describe('a failed sync', () => {
    it('leaves no armed timer able to answer or commit anything, and drain still resolves', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 20 });
      void w.write(1);
      await turn();
      // Armed now: a lane timer (write 2 waits out the spacing), a deferred commit (write 3) and, once committed
      // by write 4 (answered at commit), the patient sync of write 3.
      void w.write(2);
      void w.write(3, { withinMs: 8 });
      await turn();
      w.syncs[0]!.fail('EIO');
      await turn();
      expect([1, 2, 3].map(w.state)).toEqual(['rejected', 'rejected', 'rejected']);
      await expect(w.write(4, false)).rejects.toThrow(/could not sync its write-ahead log/);
      await sleep(PATIENT_SYNC_MS + 30);
      expect(w.syncs).toHaveLength(1);
      expect(w.rows()).toBe(1);
      await expect(w.writer.drain()).resolves.toBeUndefined();
    });

    it('fails a key taken in a batch whose sync failed, and a later use of that key is still refused', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0 });
      const first = w.write(1, { key: 'jti-1' });
      await turn();
      w.syncs[0]!.fail('EIO');
      await expect(first).rejects.toThrow(/could not sync/);
      await expect(w.write(2, { key: 'jti-1' })).rejects.toThrow(/could not sync/);
      // The row is committed (the disk may or may not hold it): the key is spent, never handed out again.
      expect(w.db.prepare("SELECT count(*) AS c FROM once WHERE k = 'jti-1'").get()).toEqual({ c: 1 });
    });
  });

  describe('a batch that fails', () => {
    it('when the write lock is taken (SQLITE_BUSY): fails its writes, begins no sync for them, and still answers the earlier writes its sync covers', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0 });
      void w.write(1, { key: 'jti-a' });
      await turn();
      expect(w.syncs).toHaveLength(1);
      const other = new DatabaseSync(w.file);
      other.exec('BEGIN IMMEDIATE');
      try {
        void w.write(2, { key: 'jti-b' });
        void w.write(3, false);
        await turn();
        expect([2, 3].map(w.state)).toEqual(['rejected', 'rejected']);
        expect(String(w.error(2))).toMatch(/locked|busy/i);
        expect(w.syncs).toHaveLength(1);
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
      // The failed batch took nothing: its key is taken by the next use, once.
      const again = [w.write(4, { key: 'jti-b' }), w.write(5, { key: 'jti-b' })];
      await turn();
      w.syncs[1]!.end();
      expect(await Promise.all(again)).toEqual([true, false]);
      checkOrderings(w.log, new Set([1, 2, 4, 5]));
    });

    it('when a statement rolls the transaction back (SQLITE_FULL): fails every write of the batch, stores none, and syncs nothing for them', async () => {
      const w = syncsHeldOpen({ syncSpacingMs: 0 });
      w.db.exec('CREATE TABLE big (b BLOB)');
      void w.write(1);
      await turn();
      const pages = Number((w.db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
      w.db.exec(`PRAGMA max_page_count = ${pages + 8}`);
      void w.write(2, { key: 'jti-a' });
      const full = w.writer.submit(() => w.db.prepare('INSERT INTO big (b) VALUES (zeroblob(1000000))').run(), true);
      void w.write(3, { key: 'jti-b' });
      void w.write(4, false);
      await expect(full).rejects.toThrow(/rolled back/);
      await turn();
      expect([2, 3, 4].map(w.state)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(w.rows()).toBe(1);
      expect(w.db.prepare('SELECT count(*) AS c FROM once').get()).toEqual({ c: 0 });
      expect(w.syncs).toHaveLength(1);
      w.syncs[0]!.end();
      await turn();
      expect(w.state(1)).toBe('resolved');
      checkOrderings(w.log, new Set([1, 2, 3]));
    });
  });

  describe('the WAL descriptors the storage syncs (sqlite.ts, FULL)', () => {
    const linux = process.platform === 'linux';

    it.skipIf(!linux)('are two open files of the WAL SQLite writes, each with its own error cursor, and both are closed by close()', async () => {
      const dir = dataDir();
      const wal = join(dir, `${DATABASE_FILE}-wal`);
      const storage = openSqlite(dir, { synchronous: 'FULL' });
      try {
        await storage.appendAudit(denialRecord());
        const lanes = descriptorsOf(wal).filter((d) => d.readOnly);
        expect(lanes).toHaveLength(2);
        // Two open file descriptions, not one duplicated: reading through one moves only its own offset (Linux keeps
        // a write-back error cursor per open file description, as it keeps the offset).
        const [a, b] = lanes.map((d) => d.fd) as [number, number];
        const before = offsetOf(b);
        readSync(a, Buffer.alloc(8), 0, 8, null);
        expect(offsetOf(a)).not.toBe(offsetOf(b));
        expect(offsetOf(b)).toBe(before);
      } finally {
        await storage.close();
      }
      expect(descriptorsOf(wal)).toEqual([]);
    });

    // Was a hole (fixed in sqlite.ts): the storage opened `<data dir>/deploy-sts.sqlite-wal` by name, but SQLite
    // resolves a symbolic link to the database file and writes its WAL beside the link's target. With a database file
    // moved to another volume and linked back, the storage synced a stale WAL left beside the link (or refused to
    // start with a bare ENOENT, below): every "durable" answer rested on an fdatasync of a file SQLite never writes.
    it.skipIf(!linux)('syncs the WAL SQLite writes when the database file is a link to another volume, not a stale file beside the link', async () => {
      const dir = dataDir();
      const volume = dataDir();
      new DatabaseSync(join(volume, 'moved.sqlite')).close();
      symlinkSync(join(volume, 'moved.sqlite'), join(dir, DATABASE_FILE));
      // Left behind by the move (an earlier crash leaves the WAL beside the database).
      closeSync(openSync(join(dir, `${DATABASE_FILE}-wal`), 'w'));
      const storage = openSqlite(dir, { synchronous: 'FULL' });
      try {
        await storage.appendAudit(grantRecord());
        expect(statSync(join(volume, 'moved.sqlite-wal')).size).toBeGreaterThan(0);
        expect(descriptorsOf(join(dir, `${DATABASE_FILE}-wal`)), 'descriptors of the stale file').toEqual([]);
        expect(descriptorsOf(join(volume, 'moved.sqlite-wal')).filter((d) => d.readOnly)).toHaveLength(2);
      } finally {
        await storage.close();
      }
    });

    // Was a hole (the same cause): with no stale file beside the link, the storage refused to start with a bare
    // ENOENT on a file the operator never named.
    it('opens a database file that is a link to another volume, and keeps what it acknowledged', async () => {
      const dir = dataDir();
      const volume = dataDir();
      mkdirSync(join(volume, 'db'));
      new DatabaseSync(join(volume, 'db', 'moved.sqlite')).close();
      symlinkSync(join(volume, 'db', 'moved.sqlite'), join(dir, DATABASE_FILE));
      const storage = openSqlite(dir, { synchronous: 'FULL' });
      const records = [grantRecord(), denialRecord()];
      await Promise.all(records.map((r) => storage.appendAudit(r)));
      await storage.close();
      const reopened = openSqlite(dir, { synchronous: 'FULL' });
      try {
        expect(await reopened.listAudit({})).toHaveLength(2);
      } finally {
        await reopened.close();
      }
    });
  });

  describe('the storage under FULL, with the real fdatasync and holds for the WAL bound', () => {
    it('answers every write of a long burst through many holds, takes each jti once, and keeps all it answered after a reopen', async () => {
      const dir = dataDir();
      const walRestartBytes = 64 * 1024;
      const storage = openSqlite(dir, { synchronous: 'FULL', walRestartBytes });
      const expiresAt = Math.floor(Date.now() / 1000) + 300;
      const issuer = 'https://token.actions.githubusercontent.com';
      const granted = new Map<string, number>();
      let audits = 0;
      let revocations = 0;
      try {
        for (let wave = 0; wave < 400; wave++) {
          const writes: Promise<unknown>[] = [];
          for (let i = 0; i < 6; i++) {
            const grant = grantRecord();
            // Each jti is presented twice, in this wave and in the next: once across batches, once within one.
            const jti = `jti-${wave - (i % 2)}-${i}`;
            writes.push(
              storage
                .recordExchange({ issuer, jti, expiresAt }, (use) => (use === 'first' ? grant : denialRecord({ subjectJti: jti, reason: 'replay' })))
                .then((use) => {
                  audits++;
                  if (use === 'first') granted.set(jti, (granted.get(jti) ?? 0) + 1);
                }),
            );
          }
          writes.push(storage.revoke(`revoked-${wave}`, expiresAt).then(() => revocations++));
          writes.push(storage.gateway.appendGatewayAudit(gatewayAuditRecord({ detail: `wave ${wave}` }), 'after-answer'));
          if (wave % 2 === 0) await Promise.all(writes);
          else await sleep(0);
        }
        await sleep(50);
      } finally {
        await storage.close();
      }
      expect([...granted.values()].every((n) => n === 1)).toBe(true);
      // The WAL was rewound (held commits) many times: without holds it would have grown to megabytes.
      expect(statSync(join(dir, `${DATABASE_FILE}-wal`), { throwIfNoEntry: false })?.size ?? 0).toBeLessThan(1024 * 1024);
      const db = new DatabaseSync(join(dir, DATABASE_FILE), { readOnly: true });
      try {
        const n = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
        expect(n('SELECT count(*) AS n FROM audit')).toBeGreaterThanOrEqual(audits);
        expect(n("SELECT count(*) AS n FROM audit WHERE result = 'granted'")).toBe(granted.size);
        expect(n('SELECT count(*) AS n FROM revoked')).toBe(revocations);
        expect(n('SELECT count(*) AS n FROM gateway_audit')).toBe(400);
      } finally {
        db.close();
      }
    });
    it('close() in the middle of a burst through holds answers every write made before it and keeps them all', async () => {
      const dir = dataDir();
      const storage = openSqlite(dir, { synchronous: 'FULL', walRestartBytes: 64 * 1024 });
      const expiresAt = Math.floor(Date.now() / 1000) + 300;
      const writes: Promise<unknown>[] = [];
      for (let wave = 0; wave < 300; wave++) {
        for (let i = 0; i < 5; i++) writes.push(storage.appendAudit(denialRecord()));
        writes.push(storage.revoke(`revoked-${wave}`, expiresAt));
        writes.push(storage.gateway.appendGatewayAudit(gatewayAuditRecord(), 'after-answer'));
        // Let some commits, syncs and checkpoints happen, but leave the last waves queued for close().
        if (wave < 280) await sleep(0);
      }
      await storage.close();
      const outcomes = await Promise.allSettled(writes);
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
      const db = new DatabaseSync(join(dir, DATABASE_FILE), { readOnly: true });
      try {
        const n = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
        expect([n('SELECT count(*) AS n FROM audit'), n('SELECT count(*) AS n FROM revoked'), n('SELECT count(*) AS n FROM gateway_audit')]).toEqual([1500, 300, 300]);
      } finally {
        db.close();
      }
    });
  });

  describe('the service under FULL, with the real fdatasync', () => {
    const running = useIssuerAndService({ env: { ...NO_RATE_LIMITS, DEPLOY_STS_SYNCHRONOUS: 'FULL' } });

    it('grants one captured token once when its copies arrive across many commits and syncs, amid other exchanges, and records every attempt', async () => {
      const captured = await running.issuer.token();
      const jti = JSON.parse(Buffer.from(captured.split('.')[1]!, 'base64url').toString('utf8')).jti as string;
      const others = await Promise.all(Array.from({ length: 30 }, () => running.issuer.token()));
      // One copy each millisecond or so: the copies fall into different batches, behind syncs on both lanes.
      const attempts: Promise<{ status: number }>[] = [];
      for (let i = 0; i < 30; i++) {
        attempts.push(exchangeToken(running.svc.url, captured), exchangeToken(running.svc.url, others[i]!));
        await sleep(i % 3);
      }
      const answers = await Promise.all(attempts);
      const ours = answers.filter((_, i) => i % 2 === 0).map((a) => a.status);
      expect(ours.filter((s) => s === 200), JSON.stringify(ours)).toHaveLength(1);
      expect(ours.filter((s) => s !== 200).every((s) => s === 400), JSON.stringify(ours)).toBe(true);
      expect(answers.filter((_, i) => i % 2 === 1).map((a) => a.status)).toEqual(others.map(() => 200));
      // Answered only once durable: every attempt's record is there, one of them the grant.
      const db = new DatabaseSync(join(running.svc.dataDir, DATABASE_FILE), { readOnly: true });
      try {
        const rows = db.prepare('SELECT result FROM audit WHERE subject_jti = ?').all(jti) as { result: string }[];
        expect(rows).toHaveLength(30);
        expect(rows.filter((r) => r.result === 'granted')).toHaveLength(1);
      } finally {
        db.close();
      }
    });
  });
});
