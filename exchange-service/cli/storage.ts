/** The storage `serve` uses, for the verbs that read or change it: SQLite in the data directory, or PostgreSQL. */
import type { StorageConfig } from '../storage/open.js';

export function storageOptions(dataDir: string | undefined, env: NodeJS.ProcessEnv): StorageConfig {
  return {
    dataDir: dataDir ?? env.DEPLOY_STS_DATA_DIR ?? '.data',
    synchronous: 'FULL',
    databaseUrl: env.DEPLOY_STS_DATABASE_URL || undefined,
    keyEncryptionKeyFile: env.DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE || undefined,
  };
}
