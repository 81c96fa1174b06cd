/**
 * The group-commit writer (storage/group-commit.ts) on a real SQLite file, with the WAL's `fdatasync` stood in for:
 * each sync the writer begins is recorded with its lane and the rows committed when it began, and ends (or fails)
 * when the test says — the only way to hold a sync open, to have two overlap, and to make one fail. Everything the
 * writer does is also written to one ordered log (a write's statement running, a commit, a sync beginning or ending,
 * an answer as its caller sees it), so that a test can check orderings after the fact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { onTestFinished } from 'vitest';
import { groupWriter, type SyncLane, type Writer } from '../../exchange-service/storage/group-commit.js';

export interface HeldSync {
  lane: SyncLane;
  /** Rows committed when the sync began: what it makes durable. */
  rows: number;
  /** When it began (performance.now()). */
  startedAt: number;
  /** Its place in the log. */
  seq: number;
  /** Still running: neither ended nor failed. */
  running: boolean;
  end(): void;
  fail(code: string): void;
}

export type State = 'pending' | 'resolved' | 'rejected';

export type LogEntry =
  | { kind: 'run'; n: number }
  | { kind: 'commit' }
  | { kind: 'sync-start'; sync: number; lane: SyncLane }
  | { kind: 'sync-end'; sync: number; ok: boolean }
  | { kind: 'answer'; n: number; ok: boolean };

export interface WriteOptions {
  /** Answered only once synced (default true). */
  durable?: boolean;
  /** A row nobody waits for: it may wait this long for company. */
  withinMs?: number;
  /** Also take this key of the `once` table (as the replay cache takes a jti): the answer says whether it was first. */
  key?: string;
}

/** Let the writer's end-of-turn commit and any settled answers run. */
export const turn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * A writer over a fresh WAL database with a table of rows `t (n)` and a table of keys taken once `once (k)`, its
 * syncs held open by the test; removed when the test ends. `held`: the writer's hold (bounding the WAL), read at
 * every decision, as sqlite.ts's checkpointer is.
 */
export function syncsHeldOpen({ syncSpacingMs = 0, held = () => false }: { syncSpacingMs?: number; held?: () => boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-sts-group-commit-'));
  const file = join(dir, 'db.sqlite');
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
           CREATE TABLE t (n INTEGER NOT NULL); CREATE TABLE once (k TEXT PRIMARY KEY) WITHOUT ROWID`);
  const syncs: HeldSync[] = [];
  const log: LogEntry[] = [];
  let commits = 0;
  const rows = () => Number((db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c);
  const writer: Writer = groupWriter(db, {
    syncWal: (lane, done) => {
      const index = syncs.length;
      log.push({ kind: 'sync-start', sync: index, lane });
      const sync: HeldSync = {
        lane,
        rows: rows(),
        startedAt: performance.now(),
        seq: log.length - 1,
        running: true,
        end: () => {
          if (!sync.running) throw new Error(`sync ${index} has already ended`);
          sync.running = false;
          log.push({ kind: 'sync-end', sync: index, ok: true });
          done(null);
        },
        fail: (code) => {
          if (!sync.running) throw new Error(`sync ${index} has already ended`);
          sync.running = false;
          log.push({ kind: 'sync-end', sync: index, ok: false });
          done(Object.assign(new Error(`${code}: i/o error, fdatasync`), { code }));
        },
      };
      syncs.push(sync);
    },
    onCommit: () => {
      commits++;
      log.push({ kind: 'commit' });
    },
    held,
    syncSpacingMs,
  });
  const insert = db.prepare('INSERT INTO t (n) VALUES (?)');
  const take = db.prepare('INSERT INTO once (k) VALUES (?) ON CONFLICT DO NOTHING');
  const states = new Map<number, State>();
  const errors = new Map<number, unknown>();
  const values = new Map<number, unknown>();
  /** Write row `n` (durable unless `durable` is false); its answer is tracked in `state(n)`. */
  const write = (n: number, durable: boolean | WriteOptions = true) => {
    const { durable: isDurable = true, withinMs = 0, key } = typeof durable === 'boolean' ? { durable } : durable;
    states.set(n, 'pending');
    const answer = writer.submit(
      () => {
        log.push({ kind: 'run', n });
        insert.run(n);
        return key === undefined ? n : Number(take.run(key).changes) === 1;
      },
      isDurable,
      withinMs,
    );
    answer.then(
      (value) => {
        states.set(n, 'resolved');
        values.set(n, value);
        log.push({ kind: 'answer', n, ok: true });
      },
      (error: unknown) => {
        states.set(n, 'rejected');
        errors.set(n, error);
        log.push({ kind: 'answer', n, ok: false });
      },
    );
    return answer;
  };
  onTestFinished(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    writer,
    db,
    file,
    syncs,
    log,
    rows,
    write,
    /** Syncs still running. */
    running: () => syncs.filter((s) => s.running),
    commits: () => commits,
    state: (n: number) => states.get(n),
    /** Writes not yet answered. */
    pending: () => [...states].filter(([, state]) => state === 'pending').map(([n]) => n),
    error: (n: number) => errors.get(n),
    value: (n: number) => values.get(n),
  };
}
