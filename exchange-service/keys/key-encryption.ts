/**
 * Encryption at rest of the signing keys kept in the database: AES-256-GCM under a key-encryption key (KEK) that
 * only the replicas hold (a file of 32 random bytes, base64 or hex, named by DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE).
 * Each key gets a fresh 96-bit nonce; its kid is the additional authenticated data, so a sealed key cannot be moved
 * to another row. Sealed form: `v1.<nonce>.<tag>.<ciphertext>`, each part base64url.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export type KeyEncryptionErrorCode = 'kek_unreadable' | 'kek_invalid' | 'kek_missing' | 'key_undecryptable';

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

const aad = (kid: string) => `deploy-sts signing key ${kid}`;

/** Seal `plaintext` under the KEK; `context` is the additional authenticated data (what the value belongs to). */
export function seal(kek: Buffer, context: string, plaintext: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', nonce, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** Open what `seal` made with the same KEK and context; undefined when the key, the context or the bytes differ. */
export function unseal(kek: Buffer, context: string, sealed: string): string | undefined {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1') return undefined;
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

export function sealPrivateJwk(kek: Buffer, kid: string, privateJwk: string): string {
  return seal(kek, aad(kid), privateJwk);
}

export function openPrivateJwk(kek: Buffer, kid: string, sealed: string): string {
  const opened = unseal(kek, aad(kid), sealed);
  if (opened === undefined) {
    throw new KeyEncryptionError(
      'key_undecryptable',
      `cannot decrypt signing key ${kid}: ${KEK_VARIABLE} is not the key-encryption key it was sealed with (or the row was altered)`,
    );
  }
  return opened;
}
