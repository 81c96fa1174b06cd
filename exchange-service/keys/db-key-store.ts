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
import { KEK_VARIABLE, KeyEncryptionError, isLegacySeal, openLegacyPrivateJwk, openPrivateJwk, sealPrivateJwk, type SealedKeyFields } from './key-encryption.js';
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

const fieldsOf = (row: KeyRow, retiredAt: number | null = row.retired_at === null ? null : Number(row.retired_at)): SealedKeyFields => ({
  kid: row.kid,
  alg: row.alg,
  createdAt: Number(row.created_at),
  retiredAt,
});

/**
 * The private JWK of a row. With a KEK only rows sealed as v2 are trusted: the service never writes a plaintext row
 * once a KEK is configured, and never seals or reseals one by itself — only the operator does, once, with
 * `deploy-sts keys seal` (sealStoredKeys). A plaintext or v1 row is refused, not loaded: otherwise whoever can write
 * the database could plant a signing key (or bring a retired one back) and have the next start seal it.
 */
function unseal(row: KeyRow, kek: Buffer | undefined): string {
  if (kek) {
    if (row.encryption !== 'aes-256-gcm') {
      throw new KeyEncryptionError(
        'key_unsealed',
        `signing key ${row.kid} is stored unencrypted although ${KEK_VARIABLE} is set, and is refused. If the database's keys were written before you set ${KEK_VARIABLE}, seal them once: deploy-sts keys seal (it lists every key it seals; check they are yours). Otherwise someone who can write the database added it: delete it (DELETE FROM signing_keys WHERE kid = '${row.kid}') and find out who could write the database`,
      );
    }
    if (isLegacySeal(row.private_jwk)) {
      throw new KeyEncryptionError(
        'key_legacy_seal',
        `signing key ${row.kid} is sealed in the format of deploy-sts 0.1 (only its kid bound, not its dates), and is refused. If you are upgrading, reseal the database's keys once: deploy-sts keys seal (it lists every key it reseals; check they are yours). Otherwise the row was put back from an old backup: delete it (DELETE FROM signing_keys WHERE kid = '${row.kid}') and find out who could write the database`,
      );
    }
    return openPrivateJwk(kek, fieldsOf(row), row.private_jwk);
  }
  if (row.encryption === 'none') return row.private_jwk;
  throw new KeyEncryptionError(
    'kek_missing',
    `the signing keys in the database are encrypted: set ${KEK_VARIABLE} to the key-encryption key they were written with`,
  );
}

function seal(key: SealedKeyFields, privateJwk: string, kek: Buffer | undefined): { value: string; encryption: Encryption } {
  return kek ? { value: sealPrivateJwk(kek, key, privateJwk), encryption: 'aes-256-gcm' } : { value: privateJwk, encryption: 'none' };
}

const SELECT = 'SELECT kid, alg, private_jwk, encryption, created_at, retired_at FROM signing_keys';

/**
 * Set retired_at of the rows `where` selects (in a transaction, rows locked): a sealed row is resealed, since its
 * retired_at is part of what the seal authenticates.
 */
async function retireRows(client: Db, kek: Buffer | undefined, at: number, where: string, params: unknown[]): Promise<void> {
  const { rows } = await client.query<KeyRow>(`${SELECT} WHERE ${where} FOR UPDATE`, params);
  for (const row of rows) {
    const privateJwk = unseal(row, kek);
    const { value, encryption } = seal(fieldsOf(row, at), privateJwk, kek);
    await client.query('UPDATE signing_keys SET retired_at = $1, private_jwk = $2, encryption = $3 WHERE kid = $4', [at, value, encryption, row.kid]);
  }
}

/** `db`: the pool, or a connection inside a transaction (then every statement runs in that transaction). */
export function dbKeyStore(db: Db, options: DbKeyStoreOptions = {}): KeyStore {
  const { kek } = options;
  return {
    async list() {
      const { rows } = await db.query<KeyRow>(`${SELECT} ORDER BY created_at, kid`);
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
      const { value, encryption } = seal(key, key.privateJwk, kek);
      await inTransaction(db, async (client) => {
        await advisoryXactLock(client, LOCKS.keyWrite);
        if (key.retiredAt === null) {
          // A new key retires the others when it starts signing, in the same transaction: never two signing keys at once.
          await retireRows(client, kek, key.createdAt, '(retired_at IS NULL OR retired_at > $1) AND kid <> $2', [key.createdAt, key.kid]);
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
      await inTransaction(db, async (client) => {
        await advisoryXactLock(client, LOCKS.keyWrite);
        await retireRows(client, kek, at, 'kid = $2 AND (retired_at IS NULL OR retired_at > $1)', [at, kid]);
      });
    },
    async delete(kid) {
      await db.query('DELETE FROM signing_keys WHERE kid = $1', [kid]);
    },
  };
}

/**
 * Open the key ring kept in the database. Under an advisory lock, in one transaction, create the first signing key
 * when there is none — so replicas starting together agree on one key. Then the ring reads and writes through the
 * pool. It never seals an existing row: with a KEK, plaintext and v1 rows are refused (see unseal) until the operator
 * runs `deploy-sts keys seal`.
 */
export async function openDbKeyRing(pool: Pool, kek: Buffer | undefined, now?: () => number): Promise<KeyRing> {
  await inTransaction(pool, async (client) => {
    await allowLongWait(client);
    await advisoryXactLock(client, LOCKS.initialKey);
    // Opening a ring creates the first key when there is none; the lock makes that happen once.
    await KeyRing.open(dbKeyStore(client, { kek }), now);
  });
  return KeyRing.open(dbKeyStore(pool, { kek }), now);
}

/** A key `sealStoredKeys` sealed: what it was, so the operator can check it is theirs. */
export interface SealedKeyReport {
  kid: string;
  alg: string;
  createdAt: number;
  retiredAt: number | null;
  /** `plaintext`: written without a KEK; `v1`: sealed by deploy-sts 0.1 (the kid alone bound). */
  was: 'plaintext' | 'v1';
}

/**
 * `deploy-sts keys seal`: the operator's one explicit step after setting a KEK on a database whose keys were written
 * without one (or sealed by deploy-sts 0.1). In one transaction, under the same lock as the first key's creation,
 * every plaintext and v1 row is sealed as v2 with its current fields; returns what was sealed and how many rows were
 * sealed already (a plaintext row beside sealed ones deserves a second look: this service did not write it).
 */
export async function sealStoredKeys(pool: Pool, kek: Buffer): Promise<{ sealed: SealedKeyReport[]; alreadySealed: number }> {
  return inTransaction(pool, async (client) => {
    await allowLongWait(client);
    await advisoryXactLock(client, LOCKS.initialKey);
    const { rows } = await client.query<KeyRow>(`${SELECT} WHERE encryption = 'none' OR (encryption = 'aes-256-gcm' AND private_jwk LIKE 'v1.%') ORDER BY created_at, kid FOR UPDATE`);
    const sealed: SealedKeyReport[] = [];
    for (const row of rows) {
      const was = row.encryption === 'none' ? 'plaintext' : 'v1';
      const privateJwk = was === 'plaintext' ? row.private_jwk : openLegacyPrivateJwk(kek, row.kid, row.private_jwk);
      const fields = fieldsOf(row);
      await client.query("UPDATE signing_keys SET private_jwk = $1, encryption = 'aes-256-gcm' WHERE kid = $2", [sealPrivateJwk(kek, fields, privateJwk), row.kid]);
      sealed.push({ kid: row.kid, alg: row.alg, createdAt: fields.createdAt, retiredAt: fields.retiredAt, was });
    }
    const { rows: count } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM signing_keys WHERE encryption = 'aes-256-gcm'`);
    return { sealed, alreadySealed: Number(count[0]!.n) - sealed.length };
  });
}
