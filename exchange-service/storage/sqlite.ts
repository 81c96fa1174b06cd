/**
 * The embedded storage: one SQLite file in the data directory through Node's built-in `node:sqlite`.
 * WAL journal, versioned migrations, an append-only audit log (triggers refuse UPDATE and DELETE on it),
 * the replay cache, the revocation list and the gateway's deploy counts per token (pruned once expired, in small
 * chunks).
 *
 * Group commit (group-commit.ts). The writes of concurrent requests share one transaction and, under FULL, one WAL
 * sync; each caller is answered only after its commit (and, when it must be durable, its sync). One kind of write may
 * wait a little: the audit row of a gateway call whose answer has already left (nobody waits for it, and one commit
 * and one WAL sync per 100 KiB upload cost more CPU than relaying the upload). It is committed with the next commit,
 * and at the latest GATEWAY_AUDIT_WITHIN_MS (sqlite-gateway.ts) after it was written; a process crash in that window
 * loses it, as a crash before any commit loses what is not yet committed.
 *
 * The replay check. The serving process holds the database's lock (data-dir-lock.ts), so no other process checks
 * replays against this file, and it checks them in memory (consumed-jtis.ts): the jtis of unexpired tokens, read from
 * the `replay_log` table at open. Each first use is appended to that table in the exchange's own write, so it is as
 * durable as the exchange's audit record; a replay is answered from memory without a row. A jti is spent the moment
 * it is checked: if its write then fails, it stays spent (fail closed: its token can only be refused from then on).
 * Opened without the lock (`lock: false`, the CLI's verbs beside a serving process), the storage checks no replays.
 *
 * Durability (`synchronous`). `NORMAL`: a commit survives a process crash, not a power loss. `FULL`: every
 * acknowledged audit record and revocation survives a power loss. FULL is not bought with a blocking fsync per
 * commit (node:sqlite is synchronous: that would stall the event loop for each fsync). SQLite commits in
 * `synchronous=NORMAL` (WAL frames written, not yet synced), then the writer fdatasyncs the WAL file on libuv's
 * thread pool, through one of two descriptors of it, and only then answers the callers that need durability. WAL
 * frames are appended in order, so a synced later commit implies every earlier one; a checkpoint syncs the WAL before
 * copying it, so a checkpoint in between loses nothing. A replay insert is answered at commit: no token leaves before
 * that request's audit record is synced, which syncs the insert too. A failed fdatasync poisons the storage (every
 * call not yet answered and every later one rejects): after a failed sync the state of the file is unknown, and
 * guessing would break the promise made to callers.
 *
 * Checkpoints. A WAL checkpoint fsyncs the WAL and the database file; SQLite runs it inside the commit that crosses
 * the threshold, which would stall the event loop for as long as the disk takes (tens of ms on a busy disk). Once
 * the service is writing, checkpoints move to a thread of their own with its own connection (PASSIVE: it never
 * blocks a writer); if that thread fails, SQLite's automatic checkpoints come back.
 *
 * Bounding the WAL. SQLite rewinds the WAL to its start only when a write begins after a checkpoint has copied every
 * frame, and a PASSIVE checkpoint running beside a writer that commits at every turn always ends behind: under
 * sustained load the WAL would grow without end. So once the WAL file grows past WAL_RESTART_BYTES (an fstat after
 * each commit) or a checkpoint reports that many frames, the writer holds its commits (asynchronously: the event loop
 * runs on, queued writes and their callers just wait, in order) from the end of a checkpoint (the one in flight, or
 * one started then) while a second, short checkpoint copies what the first left behind. That one runs with no writer,
 * so it copies every frame and the next commit rewinds the WAL; `journal_size_limit` truncates the file back to
 * WAL_RESTART_BYTES. A hold lasts one short checkpoint (measured in BENCHMARKS.md), at most HOLD_MAX_MS: a reader
 * elsewhere may keep a checkpoint from finishing, and then the next try waits RESTART_RETRY_MS. Writes that may wait
 * (`withinMs`) may wait that much more. Nothing about durability changes: a held write is committed, synced and
 * answered as any other; the checkpoint syncs the database before it reports every frame copied, so the rewound WAL's old frames are no
 * longer needed, and the rewound WAL's new frames are synced by the writer before anyone waiting for them is
 * answered, as before (SQLite's salts and checksums make recovery ignore stale frames past the new ones).
 */
import { chmodSync, closeSync, fdatasync, fstatSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { AUDIT_COLUMNS, auditFromRow, auditParams, tokenFromRow, type Row } from './audit-row.js';
import { consumedJtis, type ConsumedJtis } from './consumed-jtis.js';
import { DATABASE_FILE, lockDatabase, refuseHardLinks, resolvedDatabase } from './data-dir-lock.js';
import { directWriter, groupWriter, type SyncWal, type Writer } from './group-commit.js';
import { SQLITE_GATEWAY_MIGRATION, SQLITE_GATEWAY_TOKEN_DEPLOYS_MIGRATION, sqliteGatewayStorage } from './sqlite-gateway.js';
import type { JtiUse, Storage } from './types.js';

export type Synchronous = 'NORMAL' | 'FULL';

export interface SqliteOptions {
  /**
   * Take the data directory's lock and check replays (default true): the serving process. `false` for verbs that run
   * beside it (reading the audit log, revoking): they cannot consume a jti.
   */
  lock?: boolean;
  /** Told when the lock file was deleted or moved and the service locked the new one (the service logs it). */
  onLockWarning?: (message: string) => void;
  /** `FULL` (default): acknowledged audit records and revocations survive power loss. `NORMAL`: a process crash. */
  synchronous?: Synchronous;
  /**
   * Commit concurrent writes together (default true). `false` runs each write in its own transaction with SQLite's
   * own `PRAGMA synchronous` (a blocking fsync per commit under FULL): the benchmark's point of comparison.
   */
  groupCommit?: boolean;
  /** The WAL size that makes the writer wait for a checkpoint to catch up (default WAL_RESTART_BYTES; tests). */
  walRestartBytes?: number;
  /**
   * Starts the checkpoint thread (default: CHECKPOINT_THREAD on `file`). Tests only, to inject a thread that fails:
   * the storage must then fall back to SQLite's automatic checkpoints.
   */
  checkpointThread?: (file: string) => Worker;
  /**
   * Told once, with the cause, when the checkpoint thread fails and checkpoints move back onto the event loop (SQLite's
   * automatic checkpoints: the WAL stays bounded, answers wait for them). The service logs it; a restart brings the
   * thread back.
   */
  onCheckpointFallback?: (cause: string) => void;
  /** Default CHECKPOINT_STALL_MS (tests). */
  checkpointStallMs?: number;
  /** Default SYNC_STALL_MS (tests). */
  syncStallMs?: number;
  /**
   * Tests only: wraps the WAL sync under FULL (`fdatasync` of a lane's descriptor), to hold a real sync's answer back
   * as a disk that stops answering would.
   */
  wrapSyncWal?: (sync: SyncWal) => SyncWal;
}

/** Rows deleted per statement when pruning, so pruning a large backlog never stalls requests for long. */
export const PRUNE_CHUNK = 500;
/** Commits before checkpoints move to their own thread (a short CLI command never starts it). */
const CHECKPOINTER_AFTER_COMMITS = 200;
/**
 * At most one checkpoint per this many ms. Each checkpoint syncs the database file, and the WAL syncs of the answers
 * waiting meanwhile queue behind it on the disk; a page written by many commits is copied once per checkpoint. 500 ms
 * against 200 (session 6, `bench:pair`, alternated): closed loop 254 → 240 and 285 → 240 µs per exchange (five rounds
 * each), open loop at 2,300/s 420 → 384 µs (six rounds), the open loop's p99 unchanged.
 */
const CHECKPOINT_INTERVAL_MS = 500;
/**
 * A WAL this large gets rewound (see the top of this file), and a rewound WAL file is truncated to this size
 * (`journal_size_limit`). Under sustained load it peaks at about this plus one checkpoint interval's writes. Each
 * rewind holds commits for one short checkpoint (two disk syncs, 6–8 ms here): at 16 MiB that came every 0.4 s at
 * 2,100 exchanges/s (small commits write ~20 KiB of WAL per exchange), about 2% of the time, which showed at p99.
 */
export const WAL_RESTART_BYTES = 64 * 1024 * 1024;
/** The longest the writer holds its commits for a checkpoint to catch up. */
export const HOLD_MAX_MS = 300;
/**
 * The longest the checkpoint thread may take to start, or to answer one checkpoint, before the writer gives up on it
 * and falls back to SQLite's automatic checkpoints. A wedged thread would otherwise leave the WAL to grow without
 * limit (automatic checkpoints are off while the thread is trusted). A checkpoint that copies the whole 64 MiB bound
 * takes well under a second here.
 */
export const CHECKPOINT_STALL_MS = 10_000;
/**
 * WAL syncs in flight with none ending for longer than this make the storage not ready (`ping`, so /readyz answers
 * 503): every answer that must be durable waits for one, so a load balancer should send exchanges elsewhere. A sync
 * takes 0.3–15 ms here; a disk that has not answered one in seconds has stopped (a failing device, a network volume
 * that went away), or the syncs wait in libuv's thread pool behind tasks that do not end.
 */
export const SYNC_STALL_MS = 5_000;
/** After a hold whose checkpoint could not copy every frame, the next hold waits this long. */
const RESTART_RETRY_MS = 1_000;

/**
 * The checkpoint thread: its own connection, one PASSIVE checkpoint per request, answering with SQLite's result row
 * (`log`: frames in the WAL, `checkpointed`: frames copied to the database). Plain JS, run with `eval`.
 */
const CHECKPOINT_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.file);
db.exec('PRAGMA busy_timeout = 5000');
db.exec('PRAGMA synchronous = NORMAL'); // a checkpoint syncs the WAL before and the database after copying
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const row = checkpoint.get();
    parentPort.postMessage({ done: true, ok: true, busy: row.busy, log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ done: true, ok: false, error: String(error && error.message) });
  }
});
parentPort.postMessage({ ready: true });
`;

interface Checkpointer {
  afterCommit(): void;
  /** True while commits wait for a checkpoint to catch up, so that the next commit rewinds the WAL. */
  held(): boolean;
  /** Start the thread now (before a burst of large commits, such as pruning). */
  start(): void;
  close(): Promise<void>;
}

interface CheckpointDone {
  done: true;
  ok: boolean;
  busy?: number;
  log?: number;
  checkpointed?: number;
  /** Why the checkpoint failed (`ok: false`). */
  error?: string;
}

/** When the WAL is too large (bounding the WAL, at the top of this file). */
interface WalBound {
  /** In frames, as a checkpoint reports it. */
  frames: number;
  bytes: number;
  /** The WAL file's size now. */
  size(): number;
}

/**
 * Moves WAL checkpoints off the event loop and bounds the WAL (see the top of this file). `release`: called when a
 * hold ends.
 */
function checkpointer(
  db: DatabaseSync,
  file: string,
  wal: WalBound,
  release: () => void,
  options: Pick<SqliteOptions, 'checkpointThread' | 'onCheckpointFallback' | 'checkpointStallMs'>,
): Checkpointer {
  const startThread = options.checkpointThread ?? ((path: string) => new Worker(CHECKPOINT_THREAD, { eval: true, workerData: { file: path } }));
  const onFallback = options.onCheckpointFallback ?? (() => {});
  const stallMs = options.checkpointStallMs ?? CHECKPOINT_STALL_MS;
  let worker: Worker | undefined;
  /** Resolves when the thread has exited, whenever that was (a thread that died early must not hang close()). */
  let exited: Promise<void> | undefined;
  let startedAt = 0;
  let closing: Promise<void> | undefined;
  let ready = false;
  let inFlight = false;
  let failed = false;
  let commits = 0;
  let lastAt = 0;
  let holding = false;
  let holdTimer: NodeJS.Timeout | undefined;
  let retryAt = 0;
  /** The WAL passed its bound: hold when the checkpoint running (or started for it) ends. */
  let wantHold = false;

  const endHold = () => {
    if (!holding) return;
    holding = false;
    clearTimeout(holdTimer);
    holdTimer = undefined;
    release();
  };
  const checkpoint = () => {
    inFlight = true;
    lastAt = performance.now();
    worker!.postMessage('checkpoint');
  };
  const checkpointDone = (message: CheckpointDone) => {
    inFlight = false;
    if (!message.ok) return fallBack(`a checkpoint failed: ${message.error ?? 'no reason given'}`);
    const log = message.log ?? -1;
    const complete = message.busy === 0 && log >= 0 && message.checkpointed === log;
    if (holding) {
      // No commit ran since this checkpoint began: if it copied every frame, the next commit rewinds the WAL.
      if (!complete) retryAt = performance.now() + RESTART_RETRY_MS;
      endHold();
    } else {
      const due = wantHold || log >= wal.frames;
      wantHold = false;
      // Hold the next commits while a short checkpoint copies what this one left behind.
      if (due && ready && performance.now() >= retryAt) hold();
    }
  };
  const hold = () => {
    wantHold = false;
    holding = true;
    holdTimer = setTimeout(() => {
      retryAt = performance.now() + RESTART_RETRY_MS;
      endHold();
    }, HOLD_MAX_MS);
    checkpoint();
  };

  const fallBack = (cause: string) => {
    endHold();
    if (failed) return;
    failed = true;
    onFallback(cause);
    ready = false;
    try {
      db.exec('PRAGMA wal_autocheckpoint = 1000');
    } catch {
      // the next commit reports a broken connection
    }
    void worker?.terminate();
  };
  const start = () => {
    if (worker || failed) return;
    let thread: Worker;
    try {
      thread = startThread(file);
    } catch (error) {
      // Automatic checkpoints were never turned off: only the report is needed.
      fallBack(`the thread could not start: ${(error as Error).message}`);
      return;
    }
    startedAt = performance.now();
    worker = thread;
    exited = new Promise((resolve) => thread.once('exit', () => resolve()));
    thread.unref();
    thread.on('message', (message: { ready: true } | CheckpointDone) => {
      if ('ready' in message) {
        if (failed) return;
        try {
          db.exec('PRAGMA wal_autocheckpoint = 0');
          ready = true;
        } catch (error) {
          fallBack(`automatic checkpoints could not be turned off: ${(error as Error).message}`);
        }
      } else {
        checkpointDone(message);
      }
    });
    thread.on('error', (error) => fallBack(`the thread failed: ${error.message}`));
    // Whenever it exits except when closed (close() sets `failed` first): before it was ready too.
    thread.on('exit', (code) => fallBack(`the thread exited (code ${code})`));
  };

  return {
    afterCommit() {
      commits++;
      if (failed) return;
      if (!worker) {
        if (commits >= CHECKPOINTER_AFTER_COMMITS) start();
        return;
      }
      const now = performance.now();
      if (!ready && now - startedAt > stallMs) return fallBack(`the thread did not start within ${stallMs / 1000} s`);
      if (inFlight && now - lastAt > stallMs) return fallBack(`a checkpoint did not answer within ${stallMs / 1000} s`);
      if (!ready || holding) return;
      // After a rewind the file is truncated to exactly wal.bytes: it grows past that only when the WAL does.
      if (now >= retryAt && wal.size() > wal.bytes) {
        // Hold only once a checkpoint has just ended, so that the held one copies only what was committed while that
        // one ran (a few ms of commits), not everything since the last checkpoint (up to CHECKPOINT_INTERVAL_MS of
        // them): a hold of one or two disk syncs (the open loop at 1,500/s: holds of 6–15 ms every half second were
        // most of its slowest answers).
        wantHold = true;
        if (!inFlight) checkpoint();
        return;
      }
      if (inFlight || now - lastAt < CHECKPOINT_INTERVAL_MS) return;
      checkpoint();
    },
    held: () => holding,
    start,
    close() {
      // Every caller waits for the same shutdown.
      closing ??= (async () => {
        endHold();
        const thread = worker;
        failed = true;
        if (!thread) return;
        ready = false;
        // A thread that has exited already (it died, and the writer fell back) drops the message; `exited` has resolved.
        const force = setTimeout(() => void thread.terminate(), 5_000);
        thread.postMessage('close');
        await exited;
        clearTimeout(force);
      })();
      return closing;
    },
  };
}

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema
  `CREATE TABLE replay (
     issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (issuer, jti)) WITHOUT ROWID;
   CREATE INDEX replay_expiry ON replay (expires_at);
   CREATE TABLE revoked (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX revoked_expiry ON revoked (expires_at);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL, result TEXT NOT NULL CHECK (result IN ('granted','denied')),
     site TEXT, rule TEXT, context TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL,
     repository TEXT, repository_id TEXT, event_name TEXT, ref TEXT, workflow_ref TEXT, environment TEXT,
     run_id TEXT, subject_jti TEXT, token_jti TEXT, scope TEXT, expires_at INTEGER, client_ip TEXT);
   CREATE INDEX audit_site_time ON audit (site, time);
   CREATE INDEX audit_time ON audit (time);
   CREATE UNIQUE INDEX audit_token_jti ON audit (token_jti) WHERE token_jti IS NOT NULL;
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
  // 2: REPLACE deletes the conflicting row without firing delete triggers (recursive_triggers is off): refuse it too.
  `CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
     WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id OR (NEW.token_jti IS NOT NULL AND token_jti = NEW.token_jti))
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
  // 3: the deploy gateway's credentials, deploys and audit log (sqlite-gateway.ts)
  SQLITE_GATEWAY_MIGRATION,
  // 4: deploys created per gateway token (the preview tokens' cap)
  SQLITE_GATEWAY_TOKEN_DEPLOYS_MIGRATION,
  // 5: the replay cache keyed by expiry first: (expires_at, issuer, jti), before (issuer, jti) and an index on
  // expires_at. A replayed token is the same signed token, so it carries the same issuer, jti and exp and meets its
  // own row; only the issuer can make a token with a given jti. What the order buys: tokens arrive about in order of
  // expiry (GitHub's exp is the issue time plus a fixed lifetime), so a batch's inserts land on the key's last leaves
  // instead of one random leaf each — a group commit writes a page or two for the replay cache, not one per exchange
  // (storage writes of one exchange, 50 in flight, FULL, random jtis: 57 → 38 µs CPU) — and pruning deletes a range at
  // the key's start with no second index to keep.
  `CREATE TABLE replay_by_expiry (
     expires_at INTEGER NOT NULL, issuer TEXT NOT NULL, jti TEXT NOT NULL,
     PRIMARY KEY (expires_at, issuer, jti)) WITHOUT ROWID;
   INSERT INTO replay_by_expiry (expires_at, issuer, jti) SELECT expires_at, issuer, jti FROM replay;
   DROP TABLE replay;
   ALTER TABLE replay_by_expiry RENAME TO replay;`,
  // 6: the replay cache checked in memory by the process holding the database's lock (consumed-jtis.ts); its table
  // only keeps the used jtis across restarts, appended in arrival order (a rowid table: each commit's rows on its last
  // page, instead of one random page of the current expiry second each) with an index on expiry to prune. A new name,
  // not `replay` without its unique key: a release before this one still serving the file (it takes no lock) then
  // fails closed on its replay insert (no such table: 503) instead of inserting every replay as a new row.
  `CREATE TABLE replay_log (
     id INTEGER PRIMARY KEY, expires_at INTEGER NOT NULL, issuer TEXT NOT NULL, jti TEXT NOT NULL);
   INSERT INTO replay_log (expires_at, issuer, jti) SELECT expires_at, issuer, jti FROM replay ORDER BY expires_at;
   DROP TABLE replay;
   CREATE INDEX replay_log_expiry ON replay_log (expires_at);`,
];


/**
 * Brings the schema up to date. `upgrade: false` (a verb running beside the serving process, without its lock): a
 * new database is created, but an older one is left as it is and refused — a release before this one may be serving
 * it, and a migration under a running process changes what its statements mean.
 */
export function migrate(db: DatabaseSync, { upgrade = true }: { upgrade?: boolean } = {}): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  let version = row.v ?? 0;
  if (version > MIGRATIONS.length) {
    throw new Error(`the database has schema version ${version}, newer than this deploy-sts (${MIGRATIONS.length}); upgrade deploy-sts`);
  }
  if (!upgrade && version > 0 && version < MIGRATIONS.length) {
    throw new Error(
      `the database has schema version ${version}, older than this deploy-sts (${MIGRATIONS.length}), and this command does not upgrade it: ` +
        'a deploy-sts serve of the previous release may still be running on it. Restart the service with this release (`deploy-sts serve` ' +
        'upgrades the database when it starts), then run the command again',
    );
  }
  while (version < MIGRATIONS.length) {
    db.exec('BEGIN IMMEDIATE');
    try {
      // Another process may have migrated while this one waited for the write lock: read the version again under it.
      const current = (db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
      if (current >= version + 1) {
        version = current;
        db.exec('COMMIT');
        continue;
      }
      db.exec(MIGRATIONS[version]!);
      version++;
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(version);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
  return version;
}

export function openSqlite(dataDir: string, options: SqliteOptions = {}): Storage {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DATABASE_FILE);
  // Before the database is touched: a second serving process stops here, having changed nothing.
  const locking = options.lock ?? true;
  const lock = locking ? lockDatabase(dataDir, file, { warn: options.onLockWarning }) : undefined;
  // Without the lock, what the lock checks: a link to nothing is explained before SQLite fails to open it.
  const database = lock ? undefined : resolvedDatabase(file);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file);
    chmodSync(file, 0o600);
    // Now that SQLite has opened (or created) the file: which file it is, and never a hard-linked one.
    if (lock) lock.opened();
    else refuseHardLinks(database!);
  } catch (error) {
    lock?.release();
    throw error;
  }
  const synchronous = options.synchronous ?? 'FULL';
  const grouped = options.groupCommit ?? true;
  db.exec('PRAGMA journal_mode = WAL');
  // Grouped: SQLite writes the WAL without syncing it; under FULL the writer syncs it, off the event loop.
  db.exec(`PRAGMA synchronous = ${grouped ? 'NORMAL' : synchronous}`);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  const walRestartBytes = options.walRestartBytes ?? WAL_RESTART_BYTES;
  // A rewound WAL file is truncated to this size: disk use falls back after a burst.
  db.exec(`PRAGMA journal_size_limit = ${Math.floor(walRestartBytes)}`);
  /**
   * The WAL SQLite writes: beside the database file as SQLite resolved its name (`location`: symbolic links followed,
   * so a database file linked from another volume has its WAL there), not beside the name given to it.
   */
  const wal = `${db.location() ?? file}-wal`;
  /** The WAL's descriptors opened so far (closed on a failed start and by close()). */
  const opened: number[] = [];
  const closeWal = () => {
    for (const fd of opened.splice(0)) closeSync(fd);
  };
  let consumed: ConsumedJtis | undefined;
  try {
    migrate(db, { upgrade: locking });
    if (lock) {
      consumed = consumedJtis();
      for (const row of db.prepare('SELECT expires_at, issuer, jti FROM replay_log').iterate() as Iterable<{ expires_at: number; issuer: string; jti: string }>) {
        consumed.consume(row.issuer, row.jti, Number(row.expires_at));
      }
    }
    if (grouped && synchronous === 'FULL') {
      // The WAL exists while this connection is open (it was read and written above). Make the migrations and the
      // WAL's directory entry durable once, then keep the descriptors that sync the WAL after each group of commits.
      for (let lane = 0; lane < 2; lane++) opened.push(openSync(wal, 'r'));
      fsyncSync(opened[0]!);
      const dirFd = openSync(dirname(wal), 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
  } catch (error) {
    closeWal();
    db.close();
    lock?.release();
    throw error;
  }
  /**
   * Under FULL, two descriptors of the WAL file, one per sync lane (group-commit.ts). Two syncs in flight never share
   * one: Linux reports a write-back error to each open file once, at its next sync, so two syncs of one descriptor
   * could leave the error to the one that ends last, after the other had answered writes as durable.
   */
  const walFds = opened.length === 2 ? ([opened[0]!, opened[1]!] as const) : undefined;
  const walFd = walFds?.[0];
  const realSync: SyncWal | undefined = walFds && ((lane, done) => fdatasync(walFds[lane], done));
  const syncWal = realSync && options.wrapSyncWal ? options.wrapSyncWal(realSync) : realSync;
  const syncStallMs = options.syncStallMs ?? SYNC_STALL_MS;
  // A WAL frame is a page and its 24-byte header.
  const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
  const walBound: WalBound = {
    frames: Math.max(1, Math.ceil(walRestartBytes / (pageSize + 24))),
    bytes: walRestartBytes,
    size: () => {
      try {
        return walFd !== undefined ? fstatSync(walFd).size : (statSync(wal, { throwIfNoEntry: false })?.size ?? 0);
      } catch {
        return 0; // no bound this time rather than an error after a commit; a checkpoint's report still holds
      }
    },
  };
  const checkpoints = grouped ? checkpointer(db, file, walBound, () => writer.resume(), options) : undefined;
  const writer: Writer = grouped
    ? groupWriter(db, { syncWal, onCommit: () => checkpoints!.afterCommit(), held: () => checkpoints!.held() })
    : directWriter();

  const statements = new Map<string, StatementSync>();
  const stmt = (sql: string): StatementSync => {
    let s = statements.get(sql);
    if (!s) {
      s = db.prepare(sql);
      statements.set(sql, s);
    }
    return s;
  };
  const insertReplay = 'INSERT INTO replay_log (issuer, jti, expires_at) VALUES (?, ?, ?)';
  const insertAudit = `INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`;
  const tokenSelect = `SELECT a.*, r.jti AS revoked FROM audit a LEFT JOIN revoked r ON r.jti = a.token_jti
                       WHERE a.result = 'granted' AND a.token_jti IS NOT NULL`;

  /** Set by the first close(): every later call waits for the same shutdown. */
  let closing: Promise<void> | undefined;
  const open = () => {
    if (closing) throw new Error('storage is closed');
    writer.check();
  };
  /** The replay check, for a caller that still holds the database alone (the lock watches itself: data-dir-lock.ts). */
  const replayCheck = (): ConsumedJtis => {
    open();
    if (!consumed || !lock) throw new Error('this storage was opened without the data directory\'s lock, so it checks no replays: only the serving process does');
    lock.assertHeld();
    return consumed;
  };
  /** Delete up to about PRUNE_CHUNK expired rows of `table`, oldest first, by a range of its expiry index. */
  const pruneChunk = async (table: 'replay_log' | 'revoked' | 'gateway_token_deploys', now: number): Promise<number> => {
    open();
    return writer.submit(() => {
      const edge = stmt(`SELECT expires_at AS e FROM ${table} WHERE expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?`).get(now, PRUNE_CHUNK - 1) as
        | { e: number }
        | undefined;
      const until = edge === undefined ? now : Math.min(now, edge.e + 1);
      return Number(stmt(`DELETE FROM ${table} WHERE expires_at < ?`).run(until).changes);
    }, false);
  };

  return {
    kind: 'sqlite',
    gateway: sqliteGatewayStorage({ stmt, submit: (run, durable, withinMs) => writer.submit(run, durable, withinMs), open }),
    async consumeJti(issuer, jti, expiresAt) {
      if (!replayCheck().consume(issuer, jti, expiresAt)) return false;
      await writer.submit(() => {
        stmt(insertReplay).run(issuer, jti, expiresAt);
      }, false);
      return true;
    },
    async appendAudit(record) {
      open();
      const params = auditParams(record);
      await writer.submit(() => {
        stmt(insertAudit).run(...params);
      }, true);
    },
    async recordExchange({ issuer, jti, expiresAt }, recordFor) {
      const first = replayCheck().consume(issuer, jti, expiresAt);
      // One write, so both inserts share the batch's transaction and its one sync: answered once durable.
      return writer.submit((): JtiUse => {
        let use: JtiUse = first ? 'first' : 'replay';
        if (first) {
          try {
            stmt(insertReplay).run(issuer, jti, expiresAt);
          } catch (error) {
            // A failed statement leaves the batch's transaction as it was; an error that rolled the transaction back
            // fails the whole write instead, so nothing runs in autocommit behind it. The jti stays spent.
            if (grouped && !db.isTransaction) throw error;
            use = 'unavailable';
          }
        }
        stmt(insertAudit).run(...auditParams(recordFor(use)));
        return use;
      }, true);
    },
    async revoke(jti, expiresAt) {
      open();
      const revokedAt = Math.floor(Date.now() / 1000);
      await writer.submit(() => {
        stmt('INSERT INTO revoked (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(jti, expiresAt, revokedAt);
      }, true);
    },
    async isRevoked(jti) {
      open();
      return stmt('SELECT 1 AS x FROM revoked WHERE jti = ?').get(jti) !== undefined;
    },
    async listTokens({ site, now, limit = 100 }) {
      open();
      const rows = site
        ? stmt(`${tokenSelect} AND a.site = ? AND a.expires_at > ? ORDER BY a.id DESC LIMIT ?`).all(site, now, limit)
        : stmt(`${tokenSelect} AND a.expires_at > ? ORDER BY a.id DESC LIMIT ?`).all(now, limit);
      return (rows as Row[]).map(tokenFromRow);
    },
    async findToken(jti) {
      open();
      const row = stmt(`${tokenSelect} AND a.token_jti = ?`).get(jti) as Row | undefined;
      return row ? tokenFromRow(row) : undefined;
    },
    async listAudit({ site, since = 0, limit = 100 }) {
      open();
      const rows = site
        ? stmt('SELECT * FROM audit WHERE site = ? AND time >= ? ORDER BY id DESC LIMIT ?').all(site, since, limit)
        : stmt('SELECT * FROM audit WHERE time >= ? ORDER BY id DESC LIMIT ?').all(since, limit);
      return (rows as Row[]).map(auditFromRow);
    },
    async findAudit(id) {
      open();
      const row = stmt('SELECT * FROM audit WHERE id = ?').get(id) as Row | undefined;
      return row === undefined ? undefined : auditFromRow(row);
    },
    async prune(now) {
      open();
      // Chunks, each committed with the requests' writes of its loop turn: requests run in between.
      checkpoints?.start();
      // The memory first: what it forgets, the table deletes next (a crash in between: the next start reads the rows
      // left back in, and the next prune deletes them).
      consumed?.prune(now);
      let total = 0;
      for (const table of ['replay_log', 'revoked', 'gateway_token_deploys'] as const) {
        for (;;) {
          const deleted = await pruneChunk(table, now);
          total += deleted;
          if (deleted < PRUNE_CHUNK) break;
        }
      }
      return total;
    },
    async ping() {
      open();
      const stalled = writer.syncStalledFor(performance.now());
      if (stalled > syncStallMs) {
        throw new Error(
          `no sync of the write-ahead log (${wal}) has finished in ${(stalled / 1000).toFixed(1)} s, and every exchange waits for one: ` +
            'the disk is not answering (check the device: dmesg, iostat), or every thread of Node\'s I/O pool is busy ' +
            '(a DNS lookup that hangs; UV_THREADPOOL_SIZE). The service is ready again once a sync ends',
        );
      }
      lock?.check();
      stmt('SELECT 1').get();
    },
    close() {
      // Every caller waits for the same shutdown: a second close() must not return while the database is still open.
      closing ??= (async () => {
        await writer.drain();
        await checkpoints?.close();
        db.close();
        closeWal();
        lock?.release();
      })();
      return closing;
    },
  };
}
