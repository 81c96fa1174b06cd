/**
 * Real SQLite files for storage tests: fresh data directories in the temp dir, and the storages and connections a test
 * opens on them, all closed and removed after each test.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach } from 'vitest';
import type { Storage } from '../../exchange-service/storage/types.js';

export const DATABASE_FILE = 'deploy-sts.sqlite';

/** Call at the top of a test file: registers the clean-up and returns what opens files. */
export function sqliteFiles(prefix: string) {
  const dirs: string[] = [];
  const storages: Storage[] = [];
  const connections: DatabaseSync[] = [];
  afterEach(async () => {
    for (const db of connections.splice(0)) if (db.isOpen) db.close();
    await Promise.all(storages.splice(0).map((s) => s.close().catch(() => undefined)));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return {
    /** A fresh, empty data directory. */
    dataDir(): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    /** A storage closed after the test (if the test has not closed it). */
    storage<S extends Storage>(storage: S): S {
      storages.push(storage);
      return storage;
    },
    /** Another connection to the data directory's database, as an operator's shell would open. */
    connection(dir: string): DatabaseSync {
      const db = new DatabaseSync(join(dir, DATABASE_FILE));
      connections.push(db);
      return db;
    },
  };
}

/** The WAL file's size now (0 when there is none). */
export function walSize(dir: string): number {
  try {
    return statSync(join(dir, `${DATABASE_FILE}-wal`)).size;
  } catch {
    return 0;
  }
}
