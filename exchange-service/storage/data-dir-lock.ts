/**
 * The lock that gives one process a SQLite database to serve from. The serving process checks replays in its own
 * memory (consumed-jtis.ts), so a second one on the same database would accept a token the first has already
 * exchanged: it must not start.
 *
 * The lock is SQLite's own, on a small file beside the database as SQLite resolves it (symbolic links followed, so
 * two data directories linking one database file share one lock): `<database file>.lock`, by default
 * `DATA_DIR/deploy-sts.sqlite.lock`. A connection in exclusive locking mode that has written keeps its exclusive
 * lock until it is closed, and the operating system drops the lock when the process ends, however it ends: there is
 * no stale lock to clean up after a crash. A database file with a second hard link is refused (SQLite finds its
 * write-ahead log by name, so it would be corrupted, and the lock would not be shared).
 *
 * A lock file deleted or replaced while the service runs (a clean-up script) would let a second process lock the new
 * one. `check()` (throttled by the caller) sees that the name no longer leads to the file it holds, and takes the lock
 * on the new file at once; if another process got there first, the lock is lost for good and every check throws: the
 * caller refuses to consume a jti from then on (fail closed).
 *
 * The lock is advisory (fcntl): it holds between processes of one machine on a local file system. Verbs that only read
 * or revoke (`audit`, `tokens`, `credentials`, `keys`) take no lock and run beside a serving process.
 */
import { chmodSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const DATABASE_FILE = 'deploy-sts.sqlite';
/** The lock file's name beside a database that is not a link (in the data directory). */
export const LOCK_FILE = `${DATABASE_FILE}.lock`;

export interface DataDirLock {
  /** The lock file. */
  readonly file: string;
  /** Throws (with what happened and what to do) unless this process still holds the lock. */
  check(): void;
  release(): void;
}

/** The database file as SQLite will open it: symbolic links followed (the file may not exist yet). */
function resolvedDatabase(file: string): string {
  let link: boolean;
  try {
    link = lstatSync(file).isSymbolicLink();
  } catch {
    return join(realpathSync(dirname(file)), basename(file)); // not there yet: created in the data directory
  }
  if (!link) return join(realpathSync(dirname(file)), basename(file));
  try {
    return realpathSync(file);
  } catch (error) {
    throw new Error(`the database file ${file} is a symbolic link to nothing (${(error as NodeJS.ErrnoException).code}); point it at the database, or remove the link`);
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

const identity = (file: string): string | undefined => {
  try {
    const s = statSync(file);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
};

/** Takes the lock for the SQLite database `databaseFile` in `dataDir` (which exists), or throws saying what to do. */
export function lockDatabase(dataDir: string, databaseFile: string): DataDirLock {
  const database = resolvedDatabase(databaseFile);
  const file = `${database}.lock`;
  const taken = lockFile(file);
  if (!taken) {
    throw new Error(
      `another deploy-sts serve is using the data directory ${dataDir} (it holds ${file}; \`fuser ${file}\` names it): ` +
        'stop it first, or give this one its own data directory (DEPLOY_STS_DATA_DIR / --data-dir). ' +
        'One process serves from a SQLite data directory; to run replicas, use PostgreSQL (DEPLOY_STS_DATABASE_URL)',
    );
  }
  let held: DatabaseSync = taken;
  let heldId = identity(file);
  let lost: Error | undefined;
  let released = false;
  try {
    const links = statSync(database, { throwIfNoEntry: false })?.nlink ?? 1;
    if (links > 1) {
      throw new Error(
        `the database file ${database} has ${links} hard links: SQLite finds its write-ahead log by the file's name, so a hard-linked database can be ` +
          'corrupted, and a process opening it by another name would not see this lock. Keep one name (a symbolic link is fine)',
      );
    }
  } catch (error) {
    held.close();
    throw error;
  }
  return {
    file,
    check() {
      if (lost) throw lost;
      if (released) throw new Error('the data directory lock was released');
      if (heldId !== undefined && identity(file) === heldId) return;
      // The name no longer leads to the file this process holds: lock what is there now, before anyone else does.
      let again: DatabaseSync | undefined;
      try {
        again = lockFile(file);
      } catch {
        again = undefined;
      }
      if (again) {
        held.close();
        held = again;
        heldId = identity(file);
        return;
      }
      lost = new Error(
        `the lock file ${file} was deleted or replaced while this service held it, and it could not be taken again (another deploy-sts serve holds it, ` +
          'or the file cannot be written): this process no longer checks replays alone, so it refuses every exchange. Stop every deploy-sts serve on ' +
          `${dataDir}, start one, and keep clean-up scripts away from the lock file`,
      );
      throw lost;
    },
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}
