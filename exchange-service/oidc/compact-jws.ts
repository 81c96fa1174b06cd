/**
 * Compact JWS (RFC 7515) decoding — of GitHub's RS256 tokens and of our own EdDSA deploy tokens — and RS256
 * signature checking with node:crypto, the hot path of every exchange. Strict: exactly three base64url parts with no padding, a JSON object header and payload. Nothing in the header
 * is followed (`jku`, `x5u`, `jwk`, `x5c` are never read); the caller checks `alg` and refuses `crit`.
 */
import { verify, type KeyObject } from 'node:crypto';

export interface CompactJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const PART = /^[A-Za-z0-9_-]+$/;
/** The signature may be empty (an `alg: none` token), so that the caller's alg check is what refuses it. */
const SIGNATURE = /^[A-Za-z0-9_-]*$/;

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Decode without verifying; undefined for anything that is not a well-formed compact JWS. */
export function decodeCompactJws(token: string): CompactJws | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  if (!PART.test(h) || !PART.test(p) || !SIGNATURE.test(s)) return undefined;
  const header = jsonObject(h);
  const payload = jsonObject(p);
  if (!header || !payload) return undefined;
  return { header, payload, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

/**
 * RSASSA-PKCS1-v1_5 with SHA-256 (RS256) over the signing input. The KeyObject is passed bare: PKCS#1 v1.5 is
 * node:crypto's padding for an `rsa` key, and an options object (`{ key, padding }`) sends every call through
 * node's slow key-preparation path (two failed brand checks, ~10 µs on the event loop per exchange).
 */
export function verifyRs256(jws: CompactJws, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== 'rsa') return false;
  try {
    return verify('sha256', Buffer.from(jws.signingInput), key, jws.signature);
  } catch {
    return false;
  }
}
