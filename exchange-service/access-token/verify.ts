/**
 * Verify a token this service minted (for /introspect and /revoke): a compact JWS with our algorithm and `typ`,
 * the kid of one of our published keys, our issuer, and the claims every deploy token carries.
 */
import { verify, type KeyObject } from 'node:crypto';
import { MAX_TOKEN_TTL_SECONDS } from '../../shared/wire.js';
import { decodeCompactJws } from '../oidc/compact-jws.js';
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP, type AccessTokenClaims } from './claims.js';

/** The public keys our tokens may be signed with: the key ring's active and retired-but-published keys. */
export interface VerificationKeys {
  all(): readonly { kid: string; publicKeyObject: KeyObject }[];
}

const MAX_TOKEN_BYTES = 8192;

function signatureHolds(input: string, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(null, Buffer.from(input), key, signature);
  } catch {
    return false;
  }
}

/** The claim set checked field by field: a payload that is not the shape mint writes is not ours. */
function accessTokenClaims(p: Record<string, unknown>): AccessTokenClaims | undefined {
  const strings = ['iss', 'aud', 'sub', 'jti', 'site', 'scope', 'client_id'] as const;
  if (strings.some((c) => typeof p[c] !== 'string') || typeof p.exp !== 'number' || typeof p.iat !== 'number') return undefined;
  if (p.context !== 'production' && p.context !== 'preview') return undefined;
  if (p.org !== undefined && typeof p.org !== 'string') return undefined;
  const act = p.act as Record<string, unknown> | undefined;
  if (typeof act !== 'object' || act === null || Array.isArray(act) || typeof act.sub !== 'string' || typeof act.repository_id !== 'string') return undefined;
  // act.iss: the GitHub issuer (tokens minted before it was recorded have none).
  if (act.iss !== undefined && typeof act.iss !== 'string') return undefined;
  return p as unknown as AccessTokenClaims;
}

/**
 * Resolves the claims of a genuine token of ours, or undefined for anything else (foreign, forged, malformed,
 * expired). With `allowExpired`, an expired but genuine token still resolves (so revoking it is a quiet no-op).
 */
export async function verifyAccessToken(
  token: string,
  keys: VerificationKeys,
  issuer: string,
  options: { allowExpired?: boolean; now?: number } = {},
): Promise<AccessTokenClaims | undefined> {
  if (token.length > MAX_TOKEN_BYTES) return undefined;
  const jws = decodeCompactJws(token);
  if (!jws) return undefined;
  const { header, payload } = jws;
  if (header.alg !== ACCESS_TOKEN_ALG || header.typ !== ACCESS_TOKEN_TYP || header.crit !== undefined) return undefined;
  const key = keys.all().find((k) => k.kid === header.kid);
  if (!key || !signatureHolds(jws.signingInput, key.publicKeyObject, jws.signature)) return undefined;
  if (payload.iss !== issuer) return undefined;
  const claims = accessTokenClaims(payload);
  if (!claims) return undefined;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (!options.allowExpired && claims.exp <= now) return undefined;
  // We never mint a token that lives longer than the longest TTL: one that does was not minted by this service (a
  // stolen or planted key), and is refused however long it would otherwise stay valid.
  if (claims.exp - claims.iat > MAX_TOKEN_TTL_SECONDS || claims.exp <= claims.iat) return undefined;
  return claims;
}
