/**
 * Verify a token this service minted (for /introspect and /revoke): the checks of check.ts against the key ring's
 * published keys and our issuer, any of our audiences. Resolves undefined for anything that is not a live token of
 * ours; the reasons are for the deploy gateway and relying parties, which call check.ts directly.
 */
import type { KeyObject } from 'node:crypto';
import type { AccessTokenClaims } from './claims.js';
import { checkAccessToken } from './check.js';

/** The public keys our tokens may be signed with: the key ring's active and retired-but-published keys. */
export interface VerificationKeys {
  all(): readonly { kid: string; publicKeyObject: KeyObject }[];
}

/** The public key with this kid among `keys`. */
export function keyByKid(keys: VerificationKeys, kid: string): KeyObject | undefined {
  return keys.all().find((k) => k.kid === kid)?.publicKeyObject;
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
  try {
    return await checkAccessToken(token, { issuer, keyFor: (kid) => keyByKid(keys, kid), ...options });
  } catch {
    return undefined;
  }
}
