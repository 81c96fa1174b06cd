/** Verify a token this service minted (for /introspect and /revoke): our issuer, our keys, `typ: at+jwt`. */
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { KeyRing } from './keys/key-ring.js';
import { SIGNING_ALG } from './keys/key-ring.js';

export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  exp: number;
  iat: number;
  sub: string;
  site: string;
  scope: string;
  context: string;
}

/**
 * Resolves the claims of a genuine token of ours, or undefined for anything else (foreign, forged, malformed).
 * With `allowExpired`, an expired but genuine token still resolves (so revoking it is a quiet no-op).
 */
export async function verifyAccessToken(
  token: string,
  keys: KeyRing,
  issuer: string,
  options: { allowExpired?: boolean; now?: number } = {},
): Promise<AccessTokenClaims | undefined> {
  if (token.length > 8192) return undefined;
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), {
      issuer,
      typ: 'at+jwt',
      algorithms: [SIGNING_ALG],
      requiredClaims: ['jti', 'exp', 'iat', 'sub'],
      currentDate: options.allowExpired ? new Date(0 + 1000) : options.now ? new Date(options.now * 1000) : undefined,
    });
    if (typeof payload.site !== 'string' || typeof payload.scope !== 'string' || typeof payload.context !== 'string') return undefined;
    return payload as AccessTokenClaims;
  } catch {
    return undefined;
  }
}
