/**
 * Group commit for the embedded storage (sqlite.ts): the writes of concurrent requests share one transaction, and
 * under FULL one WAL sync, and every caller is answered only once what it waits for is true.
 *
 * Batches. Writes are queued; a batch is one `BEGIN IMMEDIATE … COMMIT` of up to MAX_BATCH writes, each statement
 * inside that transaction with its own result (a replay insert: first or not) recorded for its caller. A caller is
 * answered only after the transaction commits, and a failed commit fails every caller in the batch (fail closed).
 *
 * Syncs (FULL). SQLite commits without syncing (`synchronous=NORMAL`: WAL frames written, not yet on disk); the
 * writer then syncs the WAL file off the event loop (`fdatasync` on libuv's thread pool), and only then answers the
 * callers that need durability. WAL frames are appended in order, so a sync covers every commit made before it
 * began — including those an earlier sync, still running, was started for.
 *
 * When syncs begin, and batches commit. A sync costs far more than a commit (here 100–150 µs of kernel CPU for an
 * `fdatasync` of the WAL, against about 50 µs to commit one exchange), and a write that must be durable cannot be
 * answered before a sync that begins after its commit. So syncs begin at least SYNC_SPACING_MS apart, at most two at
 * once, and durable writes wait in the queue until a sync can begin for them; then everything queued is committed in
 * one batch and synced. When a sync ends sooner than SYNC_SPACING_MS, the writes that arrived meanwhile wait out the
 * rest of it and share the next commit and sync (at 2,000 exchanges/s: about two exchanges per sync instead of one,
 * and 24 → 20 KiB of WAL per exchange); when a sync runs longer (a checkpoint writing the database file makes some
 * take 5–15 ms), a second begins beside it, so that a slow sync delays only the writes it covers, not also those that
 * arrive while it runs. Each of the two runs on its own descriptor of the WAL file (`SyncWal`'s lane). Writes
 * answered at commit (a replay insert alone, pruning, under NORMAL everything) are committed at the end of the turn of
 * the event loop they were written in, as before.
 *
 * One kind of write may wait a little: a row nobody waits for (`withinMs`, e.g. the audit row of a gateway call whose
 * answer has already left). It is committed with the next commit, at the latest `withinMs` after it was written,
 * and its sync, too, may wait for company: at the latest PATIENT_SYNC_MS after its commit.
 *
 * A failed sync poisons the writer: every write not yet answered is rejected — those the failed sync covered, those
 * another sync in flight covers (its success would prove nothing: after a failed write-back the file's state is
 * unknown, and a later sync on Linux need not report the earlier error again), those committed since and those
 * queued — and so is every later write. The way back is the disk mended and the host rebooted, not only the service
 * restarted: after a failed write-back Linux may go on serving the lost pages from memory to the next process.
 * A sync that succeeds answers what the syncs begun before it cover even if one of those fails later: it began after
 * their commits, and on its own descriptor it reports every write-back error since that descriptor's last sync, so its
 * success is theirs too.
 */
import type { DatabaseSync } from 'node:sqlite';

/** Most writes in one transaction; more wait for the next batch. */
export const MAX_BATCH = 512;
/**
 * The longest a committed write that nobody waits for (`withinMs`) stays unsynced, unless a write someone waits for
 * brings the sync sooner. Each WAL sync costs about 0.4 ms of CPU here; one per few uploads was most of the audit's
 * cost. A process crash loses nothing committed; a power loss may lose these writes of the last PATIENT_SYNC_MS.
 */
export const PATIENT_SYNC_MS = 100;
/**
 * The least time between the starts of two WAL syncs (see the top of this file): at most this much is added to a
 * durable write's wait, and only when syncs are that frequent. Measured in the open loop at 2,000 exchanges/s
 * (BENCHMARKS.md): 0 ms (a sync per turn, two at once) 80 µs of sync CPU per exchange; 1 ms 51–58; 2 ms 33, with
 * the p50 1.8 → 2.0 → 3.3 ms.
 */
export const SYNC_SPACING_MS = 1;

/** Which of the WAL's two descriptors a sync uses: two syncs in flight never share one. */
export type SyncLane = 0 | 1;
/** Syncs the WAL file (`fdatasync` of the lane's descriptor); `done` is called once, with the error if it failed. */
export type SyncWal = (lane: SyncLane, done: (error: Error | null) => void) => void;

export interface GroupWriterOptions {
  /** Syncs the WAL (FULL). Omitted (NORMAL): durable writes are answered at commit. */
  syncWal?: SyncWal;
  /** Called after every commit (checkpoints, bounding the WAL). */
  onCommit(): void;
  /** While true, commits wait, queued and in order, until `resume` (bounding the WAL: sqlite.ts). */
  held(): boolean;
  /** Default SYNC_SPACING_MS (tests). */
  syncSpacingMs?: number;
}

export interface Writer {
  /**
   * Queue a write; resolves with `run`'s result once committed (and synced, when `durable` under FULL). With
   * `withinMs`, it may wait that many ms for company (for rows nobody waits for).
   */
  submit<T>(run: () => T, durable: boolean, withinMs?: number): Promise<T>;
  /** Commit what is queued and wait for every pending sync. */
  drain(): Promise<void>;
  /** Throws once a sync has failed. */
  check(): void;
  /** Commit what was held. */
  resume(): void;
  /**
   * How long, at `now` (a `performance.now()` reading), syncs have been in flight with none ending, in ms: since the
   * later of the oldest one's start and the last one's end; 0 when none is in flight. While no sync ends, no durable
   * write is answered (sqlite.ts: readiness); one stuck lane beside another whose syncs end holds nothing back.
   */
  syncStalledFor(now: number): number;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

interface PendingWrite {
  /** Runs inside the batch's transaction; its return value is the caller's answer. */
  run(): unknown;
  /** Answer only once the commit is synced to disk (when there are syncs). */
  durable: boolean;
  /** Nobody waits for it (`withinMs`): its commit and its sync may wait for company. */
  patient: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Committed {
  write: PendingWrite;
  outcome: Settled;
}

interface InFlightSync {
  lane: SyncLane;
  /** When it began (`performance.now()`). */
  startedAt: number;
  /** Committed writes this sync answers (emptied once answered, possibly by a later sync). */
  covered: Committed[];
}

function settle({ write, outcome }: Committed): void {
  if (outcome.ok) write.resolve(outcome.value);
  else write.reject(outcome.error);
}

/** Each write in its own transaction, as SQLite does by default (the benchmark's point of comparison). */
export function directWriter(): Writer {
  return {
    submit<T>(run: () => T): Promise<T> {
      try {
        return Promise.resolve(run());
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async drain() {},
    check() {},
    resume() {},
    syncStalledFor: () => 0,
  };
}

/** The group-commit writer described at the top of this file. */
export function groupWriter(db: DatabaseSync, options: GroupWriterOptions): Writer {
  const { syncWal, onCommit, held } = options;
  const syncSpacingMs = options.syncSpacingMs ?? SYNC_SPACING_MS;
  let queue: PendingWrite[] = [];
  /** Queued writes that are committed at the end of the turn even while a sync runs (answered at commit). */
  let eager = 0;
  let scheduled: NodeJS.Immediate | undefined;
  /** The commit of writes that may wait (`withinMs`), when no commit is scheduled sooner. */
  let deferred: NodeJS.Timeout | undefined;
  let deferredDue = 0;
  /** Committed durable writes no sync has started for yet. */
  let unsynced: Committed[] = [];
  /** A write in `unsynced` that someone waits for: sync as soon as a lane is free, not within PATIENT_SYNC_MS. */
  let urgent = false;
  /** Oldest first; at most two. */
  const inFlight: InFlightSync[] = [];
  let patientTimer: NodeJS.Timeout | undefined;
  /** When the last sync began; the next begins SYNC_SPACING_MS later at the earliest. */
  let lastStart = -Infinity;
  /** When a sync last ended (readiness: syncStalledFor). */
  let lastEnd = -Infinity;
  /** Wakes the writer when a sync may begin again. */
  let laneTimer: NodeJS.Timeout | undefined;
  let draining = false;
  let failure: Error | undefined;
  let idle: (() => void)[] = [];

  const wakeIdle = () => {
    if (queue.length === 0 && inFlight.length === 0 && unsynced.length === 0) {
      const waiters = idle;
      idle = [];
      for (const w of waiters) w();
    }
  };

  /** A sync may begin now: fewer than two in flight, and the last began SYNC_SPACING_MS ago or more (or closing). */
  const laneFree = () => inFlight.length < 2 && (draining || performance.now() - lastStart >= syncSpacingMs);

  /** Everything not yet answered fails with `error`, and so does every later write. */
  const poison = (error: Error) => {
    failure ??= error;
    const rejectAll = (writes: PendingWrite[]) => {
      for (const write of writes) write.reject(failure);
    };
    for (const sync of inFlight) {
      rejectAll(sync.covered.map((c) => c.write));
      sync.covered = [];
    }
    rejectAll(unsynced.map((c) => c.write));
    unsynced = [];
    rejectAll(queue);
    queue = [];
    eager = 0;
  };

  const syncDone = (sync: InFlightSync, error: Error | null) => {
    lastEnd = performance.now();
    if (laneTimer !== undefined) {
      clearTimeout(laneTimer);
      laneTimer = undefined;
    }
    if (error) {
      // Before the sync leaves `inFlight`: what it covered fails with everything else.
      poison(new Error(`the storage could not sync its write-ahead log (${error.message}); mend the disk and reboot the host before starting the service again`));
    }
    const at = inFlight.indexOf(sync);
    inFlight.splice(at, 1);
    if (!failure) {
      // This sync covers every commit made before it began: also those a sync begun earlier, still running, covers.
      for (const earlier of inFlight.slice(0, at)) {
        const covered = earlier.covered;
        earlier.covered = [];
        covered.forEach(settle);
      }
      sync.covered.forEach(settle);
    }
    pump();
  };

  const startSync = () => {
    if (patientTimer !== undefined) {
      clearTimeout(patientTimer);
      patientTimer = undefined;
    }
    const lane: SyncLane = inFlight.length === 0 ? 0 : inFlight[0]!.lane === 0 ? 1 : 0;
    lastStart = performance.now();
    const sync: InFlightSync = { lane, startedAt: lastStart, covered: unsynced };
    unsynced = [];
    urgent = false;
    inFlight.push(sync);
    syncWal!(lane, (error) => syncDone(sync, error));
  };

  /** Sync what is committed, when someone waits for it and a lane is free; else at the latest PATIENT_SYNC_MS. */
  const requestSync = () => {
    if (syncWal === undefined || unsynced.length === 0 || failure) return;
    if (urgent || draining) {
      if (laneFree()) startSync();
    } else {
      patientTimer ??= setTimeout(() => {
        patientTimer = undefined;
        urgent = true;
        pump();
      }, PATIENT_SYNC_MS);
    }
  };

  /** Commit up to MAX_BATCH queued writes now. */
  const commit = () => {
    const batch = queue.length > MAX_BATCH ? queue.splice(0, MAX_BATCH) : queue;
    if (batch === queue) {
      queue = [];
      eager = 0;
    } else {
      eager = queue.filter((w) => !w.durable && !w.patient).length;
      schedule();
    }
    const outcomes: Settled[] = [];
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      for (const write of batch) write.reject(error);
      return;
    }
    for (const write of batch) {
      // An error such as SQLITE_FULL rolls the whole transaction back: what ran before it is gone, so nothing
      // after it may run in autocommit behind the batch's back.
      if (!db.isTransaction) {
        outcomes.push({ ok: false, error: new Error('the transaction was rolled back') });
        continue;
      }
      try {
        outcomes.push({ ok: true, value: write.run() });
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
    try {
      if (!db.isTransaction) throw new Error('the transaction was rolled back by an earlier error in the batch');
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // the connection is unusable; every caller below is failed anyway
        }
      }
      for (const write of batch) write.reject(error);
      return;
    }
    batch.forEach((write, i) => {
      const outcome = outcomes[i]!;
      if (write.durable && syncWal !== undefined && outcome.ok) {
        unsynced.push({ write, outcome });
        if (!write.patient) urgent = true;
      } else settle({ write, outcome });
    });
    onCommit();
  };

  /**
   * Move everything forward: commit what is queued when it may be (not while held; with syncs, when a sync can begin
   * for it, or when a write that is answered at commit is queued), start the sync it needs, and wake the writer again
   * when a sync may begin.
   */
  const pump = () => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (queue.length > 0) {
      if (failure) {
        for (const write of queue) write.reject(failure);
        queue = [];
        eager = 0;
      } else if (draining || (!held() && (syncWal === undefined || eager > 0 || laneFree()))) {
        if (deferred !== undefined) {
          clearTimeout(deferred);
          deferred = undefined;
        }
        commit();
      }
    }
    requestSync();
    // Still waiting with a lane not busy: only the spacing holds it back, so wake up when it runs out. Not "and the
    // lane is not free yet": the clock moved since the looks above, and a spacing that ran out in between would
    // leave the writes waiting with nothing to wake the writer (if it has run out, the timer fires within a ms).
    const waiting = (urgent && unsynced.length > 0) || (queue.length > 0 && !held());
    if (waiting && inFlight.length < 2 && laneTimer === undefined) {
      laneTimer = setTimeout(() => {
        laneTimer = undefined;
        pump();
      }, Math.max(0, lastStart + syncSpacingMs - performance.now()));
    }
    wakeIdle();
  };

  /** Commit at the end of this turn of the event loop. */
  function schedule() {
    scheduled ??= setImmediate(pump);
  }

  return {
    submit<T>(run: () => T, durable: boolean, withinMs = 0): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (failure) return reject(failure);
        const patient = withinMs > 0;
        queue.push({ run, durable, patient, resolve: resolve as (value: unknown) => void, reject });
        if (!durable && !patient) eager++;
        if (queue.length >= MAX_BATCH) pump();
        else if (!patient) schedule();
        else if (scheduled === undefined) {
          const due = performance.now() + withinMs;
          if (deferred !== undefined && deferredDue <= due) return;
          clearTimeout(deferred);
          deferredDue = due;
          deferred = setTimeout(() => {
            deferred = undefined;
            pump();
          }, withinMs);
        }
      });
    },
    drain() {
      // Closing: nothing waits for company any more, nor for a checkpoint, nor for a lane.
      draining = true;
      while (queue.length > 0 && !failure) commit();
      pump();
      return new Promise<void>((resolve) => {
        idle.push(resolve);
        wakeIdle();
      });
    },
    check() {
      if (failure) throw failure;
    },
    resume() {
      if (queue.length > 0) schedule();
    },
    syncStalledFor(now: number) {
      // Oldest first: the first in flight has waited longest.
      return inFlight.length === 0 ? 0 : Math.max(0, now - Math.max(inFlight[0]!.startedAt, lastEnd));
    },
  };
}
