/**
 * Signing keys in the PostgreSQL database, shared by every replica: a token minted by one verifies against the JWKS
 * of any other, and a rotation anywhere reaches all of them at their next key reload.
 * Private JWKs are sealed with AES-256-GCM when a key-encryption key is given; without one they are stored as
 * plaintext JWK (the caller warns at start-up).
 * Race-free by construction: every write of a key takes one advisory lock and retires any other active key in the
 * same transaction (a unique index allows one active key), and the first key is created under a second lock.
 */
import type { Pool } from 'pg';
import { LOCKS, advisoryXactLock, allowLongWait, inTransaction, type Db } from '../storage/pg-transaction.js';
import { KEK_VARIABLE, KeyEncryptionError, openPrivateJwk, sealPrivateJwk } from './key-encryption.js';
import { KeyRing } from './key-ring.js';
import type { KeyStore, StoredKey } from './key-store.js';

export interface DbKeyStoreOptions {
  /** The 32-byte key-encryption key; without it keys are written in plaintext. */
  kek?: Buffer;
}

type Encryption = 'none' | 'aes-256-gcm';

interface KeyRow {
  kid: string;
  alg: string;
  private_jwk: string;
  encryption: Encryption;
  created_at: string;
  retired_at: string | null;
}

function unseal(row: KeyRow, kek: Buffer | undefined): string {
  if (row.encryption === 'none') return row.private_jwk;
  if (!kek) {
    throw new KeyEncryptionError(
      'kek_missing',
      `the signing keys in the database are encrypted: set ${KEK_VARIABLE} to the key-encryption key they were written with`,
    );
  }
  return openPrivateJwk(kek, row.kid, row.private_jwk);
}

function seal(kid: string, privateJwk: string, kek: Buffer | undefined): { value: string; encryption: Encryption } {
  return kek ? { value: sealPrivateJwk(kek, kid, privateJwk), encryption: 'aes-256-gcm' } : { value: privateJwk, encryption: 'none' };
}

/** `db`: the pool, or a connection inside a transaction (then every statement runs in that transaction). */
export function dbKeyStore(db: Db, options: DbKeyStoreOptions = {}): KeyStore {
  const { kek } = options;
  return {
    async list() {
      const { rows } = await db.query<KeyRow>(
        'SELECT kid, alg, private_jwk, encryption, created_at, retired_at FROM signing_keys ORDER BY created_at, kid',
      );
      return rows.map(
        (row): StoredKey => ({
          kid: row.kid,
          alg: row.alg,
          privateJwk: unseal(row, kek),
          createdAt: Number(row.created_at),
          retiredAt: row.retired_at === null ? null : Number(row.retired_at),
        }),
      );
    },
    async save(key) {
      const { value, encryption } = seal(key.kid, key.privateJwk, kek);
      await inTransaction(db, async (client) => {
        await advisoryXactLock(client, LOCKS.keyWrite);
        if (key.retiredAt === null) {
          // A new active key retires the previous one in the same transaction: never two signing keys at once.
          await client.query('UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2', [key.createdAt, key.kid]);
        }
        await client.query(
          `INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (kid) DO UPDATE SET alg = EXCLUDED.alg, private_jwk = EXCLUDED.private_jwk, encryption = EXCLUDED.encryption,
             created_at = EXCLUDED.created_at, retired_at = EXCLUDED.retired_at`,
          [key.kid, key.alg, value, encryption, key.createdAt, key.retiredAt],
        );
      });
    },
    async retire(kid, at) {
      await db.query('UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL', [at, kid]);
    },
    async delete(kid) {
      await db.query('DELETE FROM signing_keys WHERE kid = $1', [kid]);
    },
  };
}

/**
 * Open the key ring kept in the database. Under an advisory lock, in one transaction whose connection runs every
 * statement: seal any plaintext key when a KEK is given, and create the first signing key when there is none — so
 * replicas starting together agree on one key. Then the ring reads and writes through the pool.
 */
export async function openDbKeyRing(pool: Pool, kek: Buffer | undefined, now?: () => number): Promise<KeyRing> {
  await inTransaction(pool, async (client) => {
    await allowLongWait(client);
    await advisoryXactLock(client, LOCKS.initialKey);
    if (kek) {
      const { rows } = await client.query<KeyRow>(
        "SELECT kid, alg, private_jwk, encryption, created_at, retired_at FROM signing_keys WHERE encryption = 'none'",
      );
      for (const row of rows) {
        await client.query("UPDATE signing_keys SET private_jwk = $1, encryption = 'aes-256-gcm' WHERE kid = $2 AND encryption = 'none'", [
          sealPrivateJwk(kek, row.kid, row.private_jwk),
          row.kid,
        ]);
      }
    }
    // Opening a ring creates the first key when there is none; the lock makes that happen once.
    await KeyRing.open(dbKeyStore(client, { kek }), now);
  });
  return KeyRing.open(dbKeyStore(pool, { kek }), now);
}
