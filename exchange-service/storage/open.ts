/**
 * Choose the storage backend from the configuration: SQLite in the data directory (the embedded default) or — with
 * DEPLOY_STS_DATABASE_URL — PostgreSQL shared by every replica. Opening storage migrates the schema and nothing
 * else: the signing keys are the key ring's (keys/open.ts), opened only by the verbs that sign (`serve`,
 * `keys rotate`), so `deploy-sts audit` never creates a key.
 */
import type { Pool } from 'pg';
import { redactDatabaseUrl } from './database-url.js';
import { migrate } from './pg-migrations.js';
import { createPool, postgresStorage } from './postgres.js';
import { openSqlite, type SqliteOptions, type Synchronous } from './sqlite.js';
import type { Storage } from './types.js';

export interface StorageConfig {
  dataDir: string;
  synchronous: Synchronous;
  /** `postgres://…`: use PostgreSQL instead of SQLite. */
  databaseUrl?: string | undefined;
}

export interface OpenStorageOptions {
  /**
   * The serving process (default false): with SQLite, take the data directory's lock and check replays. Every other
   * verb runs beside it without the lock and cannot consume a jti.
   */
  serve?: boolean;
  /** Something the operator should know, that does not stop the storage (SQLite: its checkpoint thread failed). */
  warn?: (message: string) => void;
  /** Tests only: SQLite's hooks for a checkpoint thread that fails and a WAL sync held back (sqlite.ts). */
  sqliteTestHooks?: SqliteTestHooks | undefined;
}

/** The SQLite options a test may set through the service, to fail what a real disk or thread can fail. */
export type SqliteTestHooks = Pick<SqliteOptions, 'checkpointThread' | 'checkpointStallMs' | 'wrapSyncWal' | 'syncStallMs'>;

/** Where the data is, for whatever else keeps state beside it (the key ring). */
export type Backend = { kind: 'sqlite'; dataDir: string } | { kind: 'postgres'; pool: Pool; shownUrl: string };

export interface OpenedStorage {
  storage: Storage;
  backend: Backend;
  /** For the start-up banner, e.g. `sqlite (synchronous=FULL)`. Never a password. */
  description: string;
}

export async function openStorage(config: StorageConfig, options: OpenStorageOptions = {}): Promise<OpenedStorage> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl);
  return {
    storage: openSqlite(config.dataDir, {
      ...options.sqliteTestHooks,
      lock: options.serve ?? false,
      synchronous: config.synchronous,
      onLockWarning: options.warn,
      onCheckpointFallback: (cause) =>
        options.warn?.(`the SQLite checkpoint thread stopped (${cause}); checkpoints now run on the event loop, which slows answers under load; restart the service to start the thread again`),
    }),
    backend: { kind: 'sqlite', dataDir: config.dataDir },
    description: `sqlite (${config.dataDir}/deploy-sts.sqlite, synchronous=${config.synchronous})`,
  };
}

async function openPostgres(url: string): Promise<OpenedStorage> {
  const shownUrl = redactDatabaseUrl(url);
  const pool = createPool(url);
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot prepare the PostgreSQL database ${shownUrl}: ${(error as Error).message}`, { cause: error });
  }
  return { storage: postgresStorage(pool), backend: { kind: 'postgres', pool, shownUrl }, description: `postgres (${shownUrl})` };
}
