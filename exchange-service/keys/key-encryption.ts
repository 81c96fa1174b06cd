/**
 * Encryption at rest of the signing keys kept in the database: AES-256-GCM under a key-encryption key (KEK) that
 * only the replicas hold (a file of 32 random bytes, base64 or hex, named by DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE).
 * Each key gets a fresh 96-bit nonce. The additional authenticated data binds the row's kid, alg, created_at and
 * retired_at: a sealed key cannot be moved to another row, and whoever can write the database cannot change when a
 * key signs (un-retire it, back- or post-date it) without the KEK. Sealed form: `v2.<nonce>.<tag>.<ciphertext>`, each
 * part base64url.
 *
 * Migration: keys sealed by deploy-sts 0.1 (`v1.…`, whose additional data was the kid alone) are opened only by
 * `deploy-sts keys seal` (openLegacyPrivateJwk), the operator's explicit step that rewrites them as v2; the service
 * itself refuses a v1 row.
 *
 * `seal` / `unseal` are the same AEAD for other stored secrets (deploy platform credentials): `v1.…`, the context
 * (what the value belongs to) as additional data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export type KeyEncryptionErrorCode = 'kek_unreadable' | 'kek_invalid' | 'kek_missing' | 'key_undecryptable' | 'key_unsealed' | 'key_legacy_seal';

export class KeyEncryptionError extends Error {
  constructor(
    readonly code: KeyEncryptionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyEncryptionError';
  }
}

export const KEK_VARIABLE = 'DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE';
const KEK_BYTES = 32;
const NONCE_BYTES = 12;
const HOW_TO_MAKE = 'make one with `openssl rand -base64 32 > kek && chmod 600 kek`';

/** The 32-byte KEK from the text of its file: 64 hex digits, or base64 / base64url of 32 bytes. */
export function parseKeyEncryptionKey(text: string, file: string): Buffer {
  const value = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) key = Buffer.from(value, 'base64');
  if (!key || key.length !== KEK_BYTES) {
    throw new KeyEncryptionError(
      'kek_invalid',
      `${KEK_VARIABLE} (${file}) must hold ${KEK_BYTES} random bytes as base64 or hex${key ? ` (it holds ${key.length} bytes)` : ''}; ${HOW_TO_MAKE}`,
    );
  }
  return key;
}

export async function readKeyEncryptionKey(file: string): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new KeyEncryptionError('kek_unreadable', `${KEK_VARIABLE}: cannot read ${file}: ${(error as Error).message}`);
  }
  return parseKeyEncryptionKey(text, file);
}

/** The row fields a sealed signing key is bound to. */
export interface SealedKeyFields {
  kid: string;
  alg: string;
  /** Unix seconds. */
  createdAt: number;
  retiredAt: number | null;
}

const legacyAad = (kid: string) => `deploy-sts signing key ${kid}`;
const aad = (f: SealedKeyFields) => JSON.stringify(['deploy-sts signing key v2', f.kid, f.alg, f.createdAt, f.retiredAt]);

function sealVersion(kek: Buffer, version: string, context: string, plaintext: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [version, nonce, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

function unsealVersion(kek: Buffer, version: string, context: string, sealed: string): string | undefined {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== version) return undefined;
  const [, nonce, tag, ciphertext] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer, Buffer];
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Seal `plaintext` under the KEK; `context` is the additional authenticated data (what the value belongs to). */
export function seal(kek: Buffer, context: string, plaintext: string): string {
  return sealVersion(kek, 'v1', context, plaintext);
}

/** Open what `seal` made with the same KEK and context; undefined when the key, the context or the bytes differ. */
export function unseal(kek: Buffer, context: string, sealed: string): string | undefined {
  return unsealVersion(kek, 'v1', context, sealed);
}

function undecryptable(kid: string): KeyEncryptionError {
  return new KeyEncryptionError(
    'key_undecryptable',
    `cannot decrypt signing key ${kid}: ${KEK_VARIABLE} is not the key-encryption key it was sealed with, or the row was altered (its kid, alg, created_at or retired_at, or the sealed key itself)`,
  );
}

/** Seal a private JWK for its row (v2: the row's kid, alg, created_at and retired_at are the additional data). */
export function sealPrivateJwk(kek: Buffer, fields: SealedKeyFields, privateJwk: string): string {
  return sealVersion(kek, 'v2', aad(fields), privateJwk);
}

/** Open a v2 sealed key; throws key_undecryptable for a wrong KEK, an altered row, or any other format. */
export function openPrivateJwk(kek: Buffer, fields: SealedKeyFields, sealed: string): string {
  const opened = unsealVersion(kek, 'v2', aad(fields), sealed);
  if (opened === undefined) throw undecryptable(fields.kid);
  return opened;
}

/** True for a key sealed before created_at, alg and retired_at were bound (v1: the kid alone). */
export function isLegacySeal(sealed: string): boolean {
  return sealed.startsWith('v1.');
}

/** Open a v1 sealed key: only for resealing it as v2, by `deploy-sts keys seal`. */
export function openLegacyPrivateJwk(kek: Buffer, kid: string, sealed: string): string {
  const opened = unsealVersion(kek, 'v1', legacyAad(kid), sealed);
  if (opened === undefined) throw undecryptable(kid);
  return opened;
}

/** Seal in the v1 format: what versions before v2 wrote (tests of the migration only). */
export function sealLegacyPrivateJwk(kek: Buffer, kid: string, privateJwk: string): string {
  return sealVersion(kek, 'v1', legacyAad(kid), privateJwk);
}
