/**
 * The lock that gives one process a SQLite database to serve from. The serving process checks replays in its own
 * memory (consumed-jtis.ts), so a second one on the same database would accept a token the first has already
 * exchanged: it must not start.
 *
 * The lock is SQLite's own, on a small file beside the database as SQLite resolves it (symbolic links followed, so
 * two data directories linking one database file share one lock): `<database file>.lock`, by default
 * `DATA_DIR/deploy-sts.sqlite.lock`. A connection in exclusive locking mode that has written keeps its exclusive
 * lock until it is closed, and the operating system drops the lock when the process ends, however it ends: there is
 * no stale lock to clean up after a crash. A database file with a second hard link is refused, by every verb (SQLite
 * finds its write-ahead log by the file's name, so a second name is a second log: corruption).
 *
 * Names can change under a running process; the file it serves does not. So the lock is watched (`fs.watch` on the
 * lock file, and a few `stat`s every LOCK_CHECK_MS for the database's name and in case the watch misses):
 * - the database's name no longer leads to the file this process opened (moved, replaced, re-linked): the process
 *   stops exchanging for good — whoever opens the name now serves another file, or this one under another name;
 * - the lock file's name leads to another file (a clean-up script deleted it): the process locks the new file at once,
 *   and keeps the old one locked too (a lock is never let go before `release()`: a name may still lead to it); if
 *   another process locked the new file first, this one stops exchanging for good.
 * "Stops" is `assertHeld()` throwing: the storage refuses to consume a jti (503), and `/readyz` is not ready. A second
 * process can only lock a new file after the old one's name is gone, and it reads the used jtis at its start; what this
 * one grants between those two moments and its noticing (a deleted lock file: at once, by the watch; a moved
 * database: within LOCK_CHECK_MS) it could grant again.
 *
 * The lock is advisory (fcntl): it holds between processes of one machine on a local file system. Verbs that only read
 * or revoke (`audit`, `tokens`, `credentials`, `keys`) take no lock and run beside a serving process.
 */
import { chmodSync, closeSync, fstatSync, lstatSync, openSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const DATABASE_FILE = 'deploy-sts.sqlite';
/** The lock file's name beside a database that is not a link (in the data directory). */
export const LOCK_FILE = `${DATABASE_FILE}.lock`;
/** How often the lock and the database's name are confirmed when no watch event came (a `stat` or two). */
export const LOCK_CHECK_MS = 200;
/**
 * The most lock files one process holds (each two descriptors and a watch). A deleted lock file is let go (no name
 * leads to it); one moved away is kept locked, so this many moves is something doing it on purpose, and the process
 * stops rather than hold one file per move.
 */
const MAX_LOCKS_HELD = 8;

export interface DataDirLock {
  /** Records which file SQLite opened (once it has), refuses a hard-linked one, and starts watching. */
  opened(): void;
  /** Throws, saying what happened and what to do, once this process has stopped holding the database alone. No I/O. */
  assertHeld(): void;
  /** Confirms the lock and the database's name now (a few `stat`s), then as `assertHeld`. */
  check(): void;
  release(): void;
}

/** The database file as SQLite will open it: symbolic links followed (the file may not exist yet). */
export function resolvedDatabase(file: string): string {
  let link: boolean;
  try {
    link = lstatSync(file).isSymbolicLink();
  } catch {
    return join(realpathSync.native(dirname(file)), basename(file)); // not there yet: created in the data directory
  }
  if (!link) return join(realpathSync.native(dirname(file)), basename(file));
  try {
    return realpathSync.native(file);
  } catch (error) {
    throw new Error(`the database file ${file} is a symbolic link to nothing (${(error as NodeJS.ErrnoException).code}); point it at the database, or remove the link`);
  }
}

/** Refuses a database file with more than one hard link (every verb: each name would have its own write-ahead log). */
export function refuseHardLinks(database: string): void {
  const links = statSync(database, { throwIfNoEntry: false })?.nlink ?? 1;
  if (links > 1) {
    throw new Error(
      `the database file ${database} has ${links} hard links: SQLite finds its write-ahead log by the file's name, so a hard-linked database can be ` +
        'corrupted, and a process opening it by another name would not see the serving process\'s lock or its latest writes. Keep one name (a symbolic link is fine)',
    );
  }
}

/** Exclusive SQLite lock on `file`, or undefined when another connection holds it. */
function lockFile(file: string): DatabaseSync | undefined {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file);
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS held (since INTEGER)');
    db.exec('COMMIT');
    chmodSync(file, 0o600);
    return db;
  } catch (error) {
    db?.close();
    if ((error as { errcode?: number }).errcode === 5 /* SQLITE_BUSY */) return undefined;
    throw new Error(
      `cannot use the lock file ${file} (${(error as Error).message}). It is deploy-sts's own: the serving process holds it. ` +
        'If no deploy-sts serve is running on this data directory, remove the file and start again; otherwise check its owner and mode ' +
        '(the service\'s user must be able to write it and its directory)',
      { cause: error },
    );
  }
}

/** A file's identity (device and inode), or undefined when the name leads nowhere. */
const identity = (file: string): string | undefined => {
  try {
    const s = statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
};

/** A lock this process holds: SQLite's connection (the lock itself) and a descriptor of the same file. */
interface Held {
  db: DatabaseSync;
  /**
   * Our own descriptor of the locked file: which file that is (the name may change), and whether any name still
   * leads to it (`nlink`). Closed only after `db`: closing any descriptor of a file drops this process's locks on it.
   */
  fd: number;
  id: string;
  watcher?: FSWatcher | undefined;
}

/** Locks `file` and opens our descriptor of the very file locked (a rename in between is retried), or undefined. */
function hold(file: string): Held | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = identity(file);
    const db = lockFile(file);
    if (!db) return undefined;
    let fd: number | undefined;
    try {
      fd = openSync(file, 'r');
      const s = fstatSync(fd, { bigint: true });
      const id = `${s.dev}:${s.ino}`;
      if (before === undefined || before === id) return { db, fd, id };
    } catch {
      // retried below
    }
    // The name was swapped while it was being locked: let go of both (the lock first) and try again.
    db.close();
    if (fd !== undefined) closeSync(fd);
  }
  throw new Error(`the lock file ${file} keeps being replaced while it is being locked; find what replaces it, then start again`);
}

export interface LockOptions {
  /** Told when something the operator should know happened to the lock, that does not stop the service. */
  warn?: ((message: string) => void) | undefined;
}

/**
 * Takes the lock for the SQLite database `databaseFile` (in `dataDir`), or throws saying what to do. `opened()` must be
 * called once SQLite has opened the database: it records which file that is (and refuses a hard-linked one).
 */
export function lockDatabase(dataDir: string, databaseFile: string, options: LockOptions = {}): DataDirLock {
  const database = resolvedDatabase(databaseFile);
  const file = `${database}.lock`;
  const taken = hold(file);
  if (!taken) {
    throw new Error(
      `another deploy-sts serve is using the database ${database} (it holds ${file}; \`fuser ${file}\` names it): ` +
        'stop it first, or give this one its own data directory (DEPLOY_STS_DATA_DIR / --data-dir). ' +
        'One process serves from a SQLite database; to run replicas, use PostgreSQL (DEPLOY_STS_DATABASE_URL)',
    );
  }
  /**
   * Every lock this process holds, the one at the lock file's name first: a lock is let go only when no name leads to
   * its file any more (deleted: nobody can open it), or at release().
   */
  const held: Held[] = [taken];
  let databaseId: string | undefined;
  let lost: Error | undefined;
  let released = false;
  let timer: NodeJS.Timeout | undefined;

  const stop = (error: Error): never => {
    lost ??= error;
    throw lost;
  };
  const letGo = (lock: Held) => {
    lock.watcher?.close();
    lock.db.close();
    closeSync(lock.fd);
  };
  const watchHeld = (lock: Held) => {
    try {
      // A rename, a deletion (the link count changes): look again now. Nothing writes a lock file.
      const watcher = watch(file, { persistent: false }, () => {
        try {
          self.check();
        } catch {
          // Recorded in `lost`: the next exchange and /readyz report it.
        }
      });
      watcher.on('error', () => watcher.close());
      lock.watcher = watcher;
    } catch {
      // Not watchable here (some file systems): the poll still runs.
    }
  };
  /** Lets go of the locks on files no name leads to any more. */
  const forgetDeleted = () => {
    for (let i = held.length - 1; i >= 1; i--) {
      const lock = held[i]!;
      if (fstatSync(lock.fd).nlink === 0) {
        held.splice(i, 1);
        letGo(lock);
      }
    }
  };

  const self: DataDirLock = {
    opened() {
      refuseHardLinks(database);
      databaseId = identity(database);
      watchHeld(taken);
      timer = setInterval(() => {
        try {
          self.check();
        } catch {
          // as above
        }
      }, LOCK_CHECK_MS).unref();
    },
    assertHeld() {
      if (lost) throw lost;
      if (released) throw new Error('the database lock was released');
    },
    check() {
      self.assertHeld();
      let now: string | undefined;
      try {
        now = resolvedDatabase(databaseFile) === database ? identity(database) : undefined;
      } catch {
        now = undefined;
      }
      if (databaseId !== undefined && now !== databaseId) {
        stop(
          new Error(
            `the database file ${database} was moved, replaced or re-linked while this service was using it (${databaseFile} no longer leads to the file it opened): ` +
              'this process refuses every exchange from now on, since another process opening that name would check replays without it. ' +
              'Put the file back where it was, then restart the service (it stays stopped until restarted)',
          ),
        );
      }
      const atName = identity(file);
      if (atName === held[0]!.id) return;
      // The name leads to another file. One this process holds already (a lock file moved aside and back)?
      const mine = held.findIndex((lock) => lock.id === atName);
      if (mine > 0) {
        held.unshift(...held.splice(mine, 1));
      } else {
        forgetDeleted();
        if (held.length >= MAX_LOCKS_HELD) {
          stop(
            new Error(
              `the lock file ${file} was moved away ${held.length} times while this service held it (each old file is kept locked, since a name still leads to it): ` +
                'this process refuses every exchange rather than hold more. Find what moves it, then restart the service',
            ),
          );
        }
        // Lock what is there now, before anyone else does.
        let again: Held | undefined;
        try {
          again = hold(file);
        } catch {
          again = undefined;
        }
        if (!again) {
          stop(
            new Error(
              `the lock file ${file} was deleted or replaced while this service held it, and it could not be taken again (another deploy-sts serve holds it, ` +
                'or the file cannot be written): this process no longer checks replays alone, so it refuses every exchange from now on. Stop every deploy-sts serve on ' +
                `${dataDir}, start one, and keep clean-up scripts away from the lock file`,
            ),
          );
        }
        held.unshift(again!);
        watchHeld(again!);
      }
      options.warn?.(
        `the lock file ${file} was deleted or moved while this service held it (a clean-up script? tmpfiles?); the service locked the file now at that name ` +
          'at once and goes on. Keep clean-up away from it: a second deploy-sts serve that got there first would stop this one',
      );
    },
    release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      for (const lock of held.splice(0)) letGo(lock);
    },
  };
  return self;
}
