/**
 * Verify a token this service minted (for /introspect and /revoke): a compact JWS with `alg: EdDSA`, `typ: at+jwt`
 * and the kid of one of our published keys, our issuer, and the claims every deploy token carries.
 */
import { verify, type KeyObject } from 'node:crypto';
import type { KeyRing } from './keys/key-ring.js';
import { SIGNING_ALG } from './keys/key-ring.js';
import { decodeCompactJws } from './oidc/jws-rs256.js';

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  jti: string;
  exp: number;
  iat: number;
  site: string;
  scope: string;
  context: string;
  client_id?: string;
  org?: string;
  act?: Record<string, unknown>;
}

const MAX_TOKEN_BYTES = 8192;

function signatureHolds(input: string, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(null, Buffer.from(input), key, signature);
  } catch {
    return false;
  }
}

/**
 * Resolves the claims of a genuine token of ours, or undefined for anything else (foreign, forged, malformed,
 * expired). With `allowExpired`, an expired but genuine token still resolves (so revoking it is a quiet no-op).
 */
export async function verifyAccessToken(
  token: string,
  keys: KeyRing,
  issuer: string,
  options: { allowExpired?: boolean; now?: number } = {},
): Promise<AccessTokenClaims | undefined> {
  if (token.length > MAX_TOKEN_BYTES) return undefined;
  const jws = decodeCompactJws(token);
  if (!jws) return undefined;
  const { header, payload: p } = jws;
  if (header.alg !== SIGNING_ALG || header.typ !== 'at+jwt' || header.crit !== undefined) return undefined;
  const key = keys.all().find((k) => k.kid === header.kid);
  if (!key || !signatureHolds(jws.signingInput, key.publicKeyObject, jws.signature)) return undefined;
  if (p.iss !== issuer) return undefined;
  const strings = ['aud', 'sub', 'jti', 'site', 'scope', 'context'] as const;
  if (strings.some((c) => typeof p[c] !== 'string') || typeof p.exp !== 'number' || typeof p.iat !== 'number') return undefined;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (!options.allowExpired && (p.exp as number) <= now) return undefined;
  return p as unknown as AccessTokenClaims;
}
