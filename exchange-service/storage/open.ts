/**
 * Choose the storage backend and the key store from the configuration: SQLite in the data directory (the embedded
 * default, keys as 0600 files beside it) or — with DEPLOY_STS_DATABASE_URL — PostgreSQL shared by every replica.
 */
import { fileKeyStore } from '../keys/file-key-store.js';
import { openSqlite, type Synchronous } from './sqlite.js';
import type { KeyStore, Storage } from './types.js';

export interface StorageConfig {
  dataDir: string;
  synchronous: Synchronous;
}

export interface OpenedStorage {
  storage: Storage;
  keyStore: KeyStore;
  /** For the start-up banner, e.g. `sqlite (synchronous=FULL)`. Never a password. */
  description: string;
}

export async function openStorage(config: StorageConfig): Promise<OpenedStorage> {
  return {
    storage: openSqlite(config.dataDir, { synchronous: config.synchronous }),
    keyStore: fileKeyStore(config.dataDir),
    description: `sqlite (${config.dataDir}/deploy-sts.sqlite, synchronous=${config.synchronous})`,
  };
}
