/**
 * The lock that gives one process a SQLite data directory to serve from. The serving process checks replays in its
 * own memory (consumed-jtis.ts), so a second one on the same directory would accept a token the first has already
 * exchanged: it must not start. The lock is SQLite's own on a small file beside the database (`deploy-sts.lock`): a
 * connection in exclusive locking mode that has written keeps its exclusive lock until it is closed, and the operating
 * system drops the lock when the process ends, however it ends — no stale lock file to clean up after a crash.
 * Verbs that only read or revoke (`audit`, `tokens`, `credentials`) take no lock and run beside a serving process.
 *
 * The lock is advisory (fcntl): it holds between processes of one machine on a local file system. A data directory on
 * a network file system may not honour it; SQLite is not meant for one there either.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const LOCK_FILE = 'deploy-sts.lock';

export interface DataDirLock {
  release(): void;
}

/** Takes the lock on `dataDir` (which exists) or throws saying who holds it and what to do. */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE);
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file);
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS held (since INTEGER)');
    db.exec('COMMIT');
    chmodSync(file, 0o600);
  } catch (error) {
    db?.close();
    if ((error as { errcode?: number }).errcode === 5 /* SQLITE_BUSY */) {
      throw new Error(
        `another deploy-sts serve is using the data directory ${dataDir} (it holds ${file}; \`fuser ${file}\` names it): ` +
          'stop it first, or give this one its own data directory (DEPLOY_STS_DATA_DIR / --data-dir). ' +
          'One process serves from a SQLite data directory; to run replicas, use PostgreSQL (DEPLOY_STS_DATABASE_URL)',
      );
    }
    throw new Error(`cannot lock the data directory ${dataDir} (${file}): ${(error as Error).message}`, { cause: error });
  }
  const held = db;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}
