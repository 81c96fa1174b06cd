/**
 * Verify a deploy token against a source of the issuer's public keys: decode, header, signature, issuer, audience,
 * expiry, then what the relying party requires (site, scope, context). Throws DeployTokenError.
 */
import { verify, type KeyObject } from 'node:crypto';
import { decodeCompactJws } from '../oidc/jws-rs256.js';
import {
  checkAudience, checkContext, checkExpiry, checkHeader, checkIssuer, checkScope, checkShape, checkSite,
  type DeployContext, type DeployTokenClaims,
} from './claims.js';
import { DeployTokenError } from './errors.js';

/** Longest token accepted (ours are well under 2 KB). */
export const MAX_TOKEN_LENGTH = 8192;

/** What the relying party needs this token to allow. */
export interface Requirement {
  site?: string;
  /** A permission such as `deployments:write` (write implies read). */
  scope?: string;
  /** `production` refuses preview tokens. */
  context?: DeployContext;
}

export interface VerifyOptions {
  issuer: string;
  audience: string;
  /** The public key with this kid, or undefined when the issuer has none. May fetch. */
  keyFor(kid: string): KeyObject | undefined | Promise<KeyObject | undefined>;
  /** Unix seconds (default: now). */
  now?: number;
  clockToleranceSeconds?: number;
}

function signatureHolds(input: string, key: KeyObject, signature: Buffer): boolean {
  if (key.asymmetricKeyType !== 'ed25519') return false;
  try {
    return verify(null, Buffer.from(input), key, signature);
  } catch {
    return false;
  }
}

/** Site, scope and context against the verified claims. */
export function checkRequirement(claims: DeployTokenClaims, require: Requirement): void {
  if (require.site !== undefined) checkSite(claims, require.site);
  if (require.scope !== undefined) checkScope(claims, require.scope);
  if (require.context !== undefined) checkContext(claims, require.context);
}

export async function verifyDeployToken(token: string, options: VerifyOptions, require: Requirement = {}): Promise<DeployTokenClaims> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new DeployTokenError('malformed', 'the bearer token is empty or too long');
  }
  const jws = decodeCompactJws(token);
  if (!jws) throw new DeployTokenError('malformed', 'the bearer token is not a compact JWS (header.payload.signature)');
  checkHeader(jws.header);
  const key = await options.keyFor(jws.header.kid as string);
  if (!key) throw new DeployTokenError('unknown_key', `no key of ${options.issuer} has kid ${JSON.stringify(jws.header.kid)}: the token was not signed by this issuer, or its key was retired long ago`);
  if (!signatureHolds(jws.signingInput, key, jws.signature)) throw new DeployTokenError('bad_signature', 'the token signature does not verify');
  const claims = checkShape(jws.payload);
  checkIssuer(claims, options.issuer);
  checkAudience(claims, options.audience);
  checkExpiry(claims, options.now ?? Math.floor(Date.now() / 1000), options.clockToleranceSeconds ?? 0);
  checkRequirement(claims, require);
  return claims;
}
