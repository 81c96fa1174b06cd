/**
 * The service's own signing keys (EdDSA / Ed25519). One key is active and signs; keys retired by a rotation stay
 * published in the JWKS until every token they signed has expired (max TTL + tolerance), then are deleted.
 * Why Ed25519: signatures are deterministic (no per-signature randomness to get wrong), keys and signatures are small
 * (32/64 bytes), and signing is the cheapest of the asymmetric choices in node:crypto (see BENCHMARKS.md).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { ACCESS_TOKEN_ALG as SIGNING_ALG } from '../access-token/claims.js';
import type { KeyStore, StoredKey } from './key-store.js';
/** A retired key stays published this long after retirement: the longest token TTL plus clock tolerance. */
export const RETIRED_KEY_GRACE_SECONDS = 3600 + 60;

export interface SigningKey {
  kid: string;
  /** The private key for node:crypto's one-shot `sign` (the hot path: no WebCrypto job per token). */
  keyObject: KeyObject;
  /** Its public half, to verify tokens this service minted (/introspect, /revoke). */
  publicKeyObject: KeyObject;
  publicJwk: JWK;
  createdAt: number;
  retiredAt: number | null;
}

function generate(now: number): StoredKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = randomBytes(12).toString('base64url');
  return { kid, alg: SIGNING_ALG, privateJwk: JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid }), createdAt: now, retiredAt: null };
}

function load(stored: StoredKey): SigningKey {
  const jwk = JSON.parse(stored.privateJwk) as JWK;
  const { d: _private, ...pub } = jwk;
  const keyObject = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  return {
    kid: stored.kid,
    keyObject,
    publicKeyObject: createPublicKey(keyObject),
    publicJwk: { ...pub, kid: stored.kid, alg: SIGNING_ALG, use: 'sig' },
    createdAt: stored.createdAt,
    retiredAt: stored.retiredAt,
  };
}

export class KeyRing {
  private keys: SigningKey[] = [];

  private constructor(
    private readonly store: KeyStore,
    private readonly now: () => number,
  ) {}

  /** Load the keys; generate the first one when there is none. */
  static async open(store: KeyStore, now: () => number = () => Math.floor(Date.now() / 1000)): Promise<KeyRing> {
    const ring = new KeyRing(store, now);
    await ring.reload();
    if (!ring.keys.some((k) => k.retiredAt === null)) await ring.rotate();
    return ring;
  }

  /** Re-read the store (another process may have rotated). Drops keys whose grace period has passed. */
  async reload(): Promise<void> {
    const now = this.now();
    const stored = await this.store.list();
    const live: SigningKey[] = [];
    for (const s of stored) {
      if (s.retiredAt !== null && s.retiredAt + RETIRED_KEY_GRACE_SECONDS < now) {
        await this.store.delete(s.kid);
        continue;
      }
      live.push(load(s));
    }
    live.sort((a, b) => b.createdAt - a.createdAt || (a.kid < b.kid ? -1 : 1));
    this.keys = live;
  }

  /** Add a new active key; the previous active key is retired (still published for its grace period). */
  async rotate(): Promise<SigningKey> {
    const now = this.now();
    const stored = generate(now);
    await this.store.save(stored);
    for (const key of this.keys) if (key.retiredAt === null) await this.store.retire(key.kid, now);
    await this.reload();
    // Two keys created in the same second: the new one must win.
    const fresh = this.keys.find((k) => k.kid === stored.kid)!;
    this.keys = [fresh, ...this.keys.filter((k) => k !== fresh)];
    return fresh;
  }

  active(): SigningKey {
    const key = this.keys.find((k) => k.retiredAt === null);
    if (!key) throw new Error('no active signing key');
    return key;
  }

  all(): readonly SigningKey[] {
    return this.keys;
  }

  /** The public JWKS: active and retired-but-in-grace keys. Never a private part. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}
