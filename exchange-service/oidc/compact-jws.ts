/**
 * Compact JWS (RFC 7515) decoding — of GitHub's RS256 tokens and of our own EdDSA deploy tokens — and signature
 * checking with node:crypto, the hot path of every exchange. Strict: exactly three base64url parts with no padding, a JSON object header and payload. Nothing in the header
 * is followed (`jku`, `x5u`, `jwk`, `x5c` are never read); the caller checks `alg` and refuses `crit`.
 */
import { verify, type KeyObject } from 'node:crypto';

export interface CompactJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The token decoded. Its first `signingInputLength` characters are the signing input (`header.payload`). */
  token: string;
  signingInputLength: number;
}

/** Three base64url parts; the signature may be empty (an `alg: none` token), so that the caller's alg check is what refuses it. */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Scratch bytes for decoding a part and for the signing input, reused by every call (each use is synchronous, and
 * done before the next begins). For speed: `Buffer.from(part, 'base64url')` and `Buffer.from(signingInput)` each
 * allocated a Buffer per part, and the signing input built as `${h}.${p}` was flattened into a fresh ~1.3 KB string
 * before it was copied. Larger inputs (rare: GitHub's tokens are ~1.3 KB) get a Buffer of their own.
 */
const SCRATCH = Buffer.allocUnsafe(16 * 1024 + 4);
const scratchFor = (bytes: number): Buffer => (bytes <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(bytes));

function jsonObject(token: string, start: number, end: number): Record<string, unknown> | undefined {
  try {
    const part = token.slice(start, end);
    const bytes = scratchFor(end - start);
    const length = bytes.write(part, 'base64url');
    const value: unknown = JSON.parse(bytes.toString('utf8', 0, length));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Decode without verifying; undefined for anything that is not a well-formed compact JWS. */
export function decodeCompactJws(token: string): CompactJws | undefined {
  if (!COMPACT.test(token)) return undefined;
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  const header = jsonObject(token, 0, first);
  if (!header) return undefined;
  const payload = jsonObject(token, first + 1, second);
  if (!payload) return undefined;
  return { header, payload, token, signingInputLength: second };
}

/**
 * Whether the signature of `jws` verifies with `key`: `algorithm` is the digest (`sha256` for RS256, null for
 * Ed25519). The signing input is written straight from the token into the scratch bytes (base64url is ASCII, so
 * latin1 writes it byte for byte); the signature follows it there.
 */
export function signatureVerifies(jws: CompactJws, algorithm: 'sha256' | null, key: KeyObject): boolean {
  const { token, signingInputLength: n } = jws;
  const signature = token.slice(n + 1);
  const bytes = scratchFor(token.length);
  bytes.write(token, 0, n, 'latin1');
  const signatureLength = bytes.write(signature, n, 'base64url');
  try {
    return verify(algorithm, bytes.subarray(0, n), key, bytes.subarray(n, n + signatureLength));
  } catch {
    return false;
  }
}

/**
 * RSASSA-PKCS1-v1_5 with SHA-256 (RS256) over the signing input. The KeyObject is passed bare: PKCS#1 v1.5 is
 * node:crypto's padding for an `rsa` key, and an options object (`{ key, padding }`) sends every call through
 * node's slow key-preparation path (two failed brand checks, ~10 µs on the event loop per exchange).
 */
export function verifyRs256(jws: CompactJws, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== 'rsa') return false;
  return signatureVerifies(jws, 'sha256', key);
}
