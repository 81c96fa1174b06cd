/**
 * The service's own signing keys (EdDSA / Ed25519). One key is active and signs; keys retired by a rotation stay
 * published in the JWKS until every token they signed has expired (max TTL + tolerance), then are deleted.
 *
 * Rotation publishes first: verifiers may cache the JWKS for its `max-age` (300 s), so a new key is stored with
 * `created_at` that far in the future — published at once, signing only from then on — and the current key is
 * retired at that same instant. `rotate({ now: true })` (`keys rotate --now`, for a compromised key) makes the new key
 * sign at once and withdraws every other key from the JWKS at once.
 * Why Ed25519: signatures are deterministic (no per-signature randomness to get wrong), keys and signatures are small
 * (32/64 bytes), and signing is the cheapest of the asymmetric choices in node:crypto (see BENCHMARKS.md).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { ACCESS_TOKEN_ALG as SIGNING_ALG } from '../access-token/claims.js';
import type { KeyStore, StoredKey } from './key-store.js';
/** A retired key stays published this long after retirement: the longest token TTL plus clock tolerance. */
export const RETIRED_KEY_GRACE_SECONDS = 3600 + 60;
/** The JWKS's Cache-Control max-age: a new key is published this long before it signs. */
export const JWKS_MAX_AGE_SECONDS = 300;

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

function generate(createdAt: number): StoredKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = randomBytes(12).toString('base64url');
  return { kid, alg: SIGNING_ALG, privateJwk: JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid }), createdAt, retiredAt: null };
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

  /** Load the keys; generate the first one (signing at once) when there is none. */
  static async open(store: KeyStore, now: () => number = () => Math.floor(Date.now() / 1000)): Promise<KeyRing> {
    const ring = new KeyRing(store, now);
    await ring.reload();
    if (!ring.keys.some((k) => k.retiredAt === null)) await ring.rotate({ now: true });
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

  /**
   * Add the next key. By default it is published now and signs from JWKS_MAX_AGE_SECONDS on (the current key is
   * retired at that instant); with `now: true` it signs at once and every other key is withdrawn from the JWKS.
   */
  async rotate(options: { now?: boolean } = {}): Promise<SigningKey> {
    const now = this.now();
    const immediate = options.now === true;
    const stored = generate(immediate ? now : now + JWKS_MAX_AGE_SECONDS);
    await this.store.save(stored);
    for (const key of this.keys) {
      if (immediate) await this.store.delete(key.kid);
      else if (key.retiredAt === null || key.retiredAt > stored.createdAt) await this.store.retire(key.kid, stored.createdAt);
    }
    await this.reload();
    return this.keys.find((k) => k.kid === stored.kid)!;
  }

  /** The key that signs now: created (published) by now, not yet retired; the newest such key. */
  active(): SigningKey {
    const now = this.now();
    const key = this.keys.find((k) => k.createdAt <= now && (k.retiredAt === null || k.retiredAt > now));
    if (!key) throw new Error('no active signing key');
    return key;
  }

  /** The key published ahead of signing, when a rotation is under way. */
  next(): SigningKey | undefined {
    const now = this.now();
    return this.keys.find((k) => k.createdAt > now);
  }

  all(): readonly SigningKey[] {
    return this.keys;
  }

  /** The public JWKS: active and retired-but-in-grace keys. Never a private part. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}
