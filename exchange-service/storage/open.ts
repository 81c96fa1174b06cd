/**
 * Choose the storage backend and the key store from the configuration: SQLite in the data directory (the embedded
 * default, keys as 0600 files beside it) or — with DEPLOY_STS_DATABASE_URL — PostgreSQL shared by every replica,
 * which then also holds the signing keys (sealed with DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE when given).
 */
import { dbKeyStore, initialiseSigningKeys } from '../keys/db-key-store.js';
import { fileKeyStore } from '../keys/file-key-store.js';
import { KEK_VARIABLE, readKeyEncryptionKey } from '../keys/key-encryption.js';
import { redactDatabaseUrl } from './database-url.js';
import { migrate } from './pg-migrations.js';
import { createPool, postgresStorage } from './postgres.js';
import { openSqlite, type Synchronous } from './sqlite.js';
import type { KeyStore, Storage } from './types.js';

export interface StorageConfig {
  dataDir: string;
  synchronous: Synchronous;
  /** `postgres://…`: use PostgreSQL instead of SQLite. */
  databaseUrl?: string | undefined;
  /** File holding the 32-byte key that seals signing keys in the database (PostgreSQL only). */
  keyEncryptionKeyFile?: string | undefined;
  /** Where start-up warnings go (default: stderr). */
  warn?: (message: string) => void;
}

export interface OpenedStorage {
  storage: Storage;
  keyStore: KeyStore;
  /** For the start-up banner, e.g. `sqlite (synchronous=FULL)`. Never a password. */
  description: string;
}

export async function openStorage(config: StorageConfig): Promise<OpenedStorage> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, config);
  return {
    storage: openSqlite(config.dataDir, { synchronous: config.synchronous }),
    keyStore: fileKeyStore(config.dataDir),
    description: `sqlite (${config.dataDir}/deploy-sts.sqlite, synchronous=${config.synchronous})`,
  };
}

async function openPostgres(url: string, config: StorageConfig): Promise<OpenedStorage> {
  const warn = config.warn ?? ((message: string) => process.stderr.write(`deploy-sts: warning: ${message}\n`));
  const shown = redactDatabaseUrl(url);
  const kek = config.keyEncryptionKeyFile ? await readKeyEncryptionKey(config.keyEncryptionKeyFile) : undefined;
  const pool = createPool(url);
  try {
    try {
      await migrate(pool);
    } catch (error) {
      throw new Error(`cannot prepare the PostgreSQL database ${shown}: ${(error as Error).message}`, { cause: error });
    }
    const keyStore = dbKeyStore(pool, { kek });
    await initialiseSigningKeys(pool, keyStore, kek);
    if (!kek) {
      warn(`the signing keys in ${shown} are stored unencrypted: set ${KEK_VARIABLE} to a file of 32 random bytes to seal them`);
    }
    return {
      storage: postgresStorage(pool),
      keyStore,
      description: `postgres (${shown}, signing keys in the database, ${kek ? 'sealed with AES-256-GCM' : 'NOT encrypted'})`,
    };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}
