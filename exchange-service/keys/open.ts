/**
 * Open the signing key ring beside the storage: keys as 0600 files in the data directory with SQLite, or in the
 * PostgreSQL database shared by the replicas (sealed with DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE when given). Opening
 * the ring creates the first key when there is none — which is why only the verbs that sign open it.
 */
import type { OpenedStorage } from '../storage/open.js';
import { dbKeyStore, openDbKeyRing } from './db-key-store.js';
import { fileKeyStore } from './file-key-store.js';
import { KEK_VARIABLE, readKeyEncryptionKey } from './key-encryption.js';
import { KeyRing } from './key-ring.js';
import type { KeyStore } from './key-store.js';

export interface SigningKeysConfig {
  /** File holding the 32-byte key that seals signing keys in the database (PostgreSQL only). */
  keyEncryptionKeyFile?: string | undefined;
  /** Where start-up warnings go (default: stderr). */
  warn?: (message: string) => void;
}

export interface OpenedKeys {
  keys: KeyRing;
  keyStore: KeyStore;
  /** The storage and where its keys are, for the start-up banner. Never a password. */
  description: string;
}

export async function openSigningKeys(opened: OpenedStorage, config: SigningKeysConfig = {}): Promise<OpenedKeys> {
  const { backend } = opened;
  if (backend.kind === 'sqlite') {
    const keyStore = fileKeyStore(backend.dataDir);
    return { keys: await KeyRing.open(keyStore), keyStore, description: opened.description };
  }
  const warn = config.warn ?? ((message: string) => process.stderr.write(`deploy-sts: warning: ${message}\n`));
  const kek = config.keyEncryptionKeyFile ? await readKeyEncryptionKey(config.keyEncryptionKeyFile) : undefined;
  const keys = await openDbKeyRing(backend.pool, kek);
  if (!kek) {
    warn(`the signing keys in ${backend.shownUrl} are stored unencrypted: set ${KEK_VARIABLE} to a file of 32 random bytes to seal them`);
  }
  return {
    keys,
    keyStore: dbKeyStore(backend.pool, { kek }),
    description: `postgres (${backend.shownUrl}, signing keys in the database, ${kek ? 'sealed with AES-256-GCM' : 'NOT encrypted'})`,
  };
}
