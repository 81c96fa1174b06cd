/**
 * Check a deploy token with reasons: decode, header (`typ` at+jwt, `alg` EdDSA, no `crit`), a key with its kid,
 * the signature, the claim set mint writes, a lifetime no longer than the longest TTL, the issuer, the audience (when one is expected) and the expiry. Each
 * check is a named function that throws DeployTokenError with its stable code. The service's own uses
 * (introspection, revocation, the deploy gateway) and relying parties (`deploy-sts/verify`) all go through here.
 */
import type { KeyObject } from 'node:crypto';
import { quote } from '../../shared/text.js';
import { MAX_TOKEN_TTL_SECONDS } from '../../shared/wire.js';
import { decodeCompactJws, signatureVerifies, type CompactJws } from '../oidc/compact-jws.js';
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP, type AccessTokenClaims } from './claims.js';
import { DeployTokenError } from './errors.js';

/** Longest token accepted (ours are well under 2 KB). */
export const MAX_TOKEN_LENGTH = 8192;

export interface CheckOptions {
  issuer: string;
  /** The `aud` required; undefined: any (introspection and revocation serve every audience of ours). */
  audience?: string;
  /** The public key with this kid, or undefined when there is none. May fetch. */
  keyFor(kid: string): KeyObject | undefined | Promise<KeyObject | undefined>;
  /** Unix seconds (default: now). */
  now?: number;
  clockToleranceSeconds?: number;
  /** Resolve an expired but otherwise genuine token (revoking it is then a quiet no-op). */
  allowExpired?: boolean;
}


export function checkHeader(header: Record<string, unknown>): string {
  if (header.typ !== ACCESS_TOKEN_TYP) throw new DeployTokenError('unsupported_token', `typ ${quote(header.typ)} is not ${ACCESS_TOKEN_TYP}: this is not a deploy-sts access token`);
  if (header.alg !== ACCESS_TOKEN_ALG) throw new DeployTokenError('unsupported_token', `alg ${quote(header.alg)} is not ${ACCESS_TOKEN_ALG}`);
  if (header.crit !== undefined) throw new DeployTokenError('unsupported_token', 'the token has a crit header, which deploy tokens never carry');
  if (typeof header.kid !== 'string' || header.kid === '') throw new DeployTokenError('malformed', 'the token header names no kid');
  return header.kid;
}

/** The claim set checked field by field: a payload that is not the shape mint writes is not ours. */
export function checkShape(p: Record<string, unknown>): AccessTokenClaims {
  for (const claim of ['iss', 'aud', 'sub', 'jti', 'site', 'scope', 'client_id'] as const) {
    if (typeof p[claim] !== 'string') throw new DeployTokenError('malformed', `the token's ${claim} claim is missing or not a string`);
  }
  for (const claim of ['exp', 'iat'] as const) {
    if (typeof p[claim] !== 'number' || !Number.isFinite(p[claim])) throw new DeployTokenError('malformed', `the token's ${claim} claim is missing or not a number`);
  }
  if (p.context !== 'production' && p.context !== 'preview') throw new DeployTokenError('malformed', `the token's context ${quote(p.context)} is neither production nor preview`);
  if (p.org !== undefined && typeof p.org !== 'string') throw new DeployTokenError('malformed', "the token's org claim is not a string");
  const act = p.act as Record<string, unknown> | undefined;
  if (typeof act !== 'object' || act === null || Array.isArray(act) || typeof act.sub !== 'string' || typeof act.repository_id !== 'string') {
    throw new DeployTokenError('malformed', "the token's act claim is missing or malformed");
  }
  // act.iss: the GitHub issuer the token was granted for (tokens minted before it was recorded have none).
  if (act.iss !== undefined && typeof act.iss !== 'string') throw new DeployTokenError('malformed', "the token's act.iss claim is not a string");
  return p as unknown as AccessTokenClaims;
}

/**
 * No token of ours lives longer than the longest TTL (a rule's max_ttl is capped at 1 h): one that does was not minted
 * by the service — it was signed with a stolen or planted key — and is refused however long it would stay valid.
 */
export function checkLifetime(claims: AccessTokenClaims): void {
  const lifetime = claims.exp - claims.iat;
  if (lifetime <= 0 || lifetime > MAX_TOKEN_TTL_SECONDS) {
    throw new DeployTokenError(
      'malformed',
      `the token lives ${lifetime} s (exp - iat), outside the 1 to ${MAX_TOKEN_TTL_SECONDS} s this service ever grants: it was not minted by it`,
    );
  }
}

/** Clock skew forgiven between the replica that minted a token and the one that checks it (on top of the tolerance). */
export const MAX_ISSUED_AHEAD_SECONDS = 60;

/**
 * A token is not issued in the future: otherwise the lifetime cap bounds nothing, since a token signed with a stolen
 * key with iat years ahead (and exp an hour after it) would stay valid for years.
 */
export function checkIssuedAt(claims: AccessTokenClaims, now: number, toleranceSeconds = 0): void {
  if (claims.iat > now + toleranceSeconds + MAX_ISSUED_AHEAD_SECONDS) {
    throw new DeployTokenError(
      'malformed',
      `the token was issued in the future (iat ${new Date(claims.iat * 1000).toISOString()}): this service never mints such a token, so it was not minted by it`,
    );
  }
}

export function checkIssuer(claims: AccessTokenClaims, issuer: string): void {
  if (claims.iss !== issuer) throw new DeployTokenError('wrong_issuer', `the token was issued by ${quote(claims.iss)}, not ${quote(issuer)}`);
}

export function checkAudience(claims: AccessTokenClaims, audience: string): void {
  if (claims.aud !== audience) {
    throw new DeployTokenError('wrong_audience', `the token is for audience ${quote(claims.aud)}, not ${quote(audience)}: it was minted for another relying party`);
  }
}

/** A token is valid strictly before exp (plus the tolerance). */
export function checkExpiry(claims: AccessTokenClaims, now: number, toleranceSeconds = 0): void {
  if (claims.exp + toleranceSeconds <= now) {
    throw new DeployTokenError('expired', `the token expired at ${new Date(claims.exp * 1000).toISOString()}; run the deploy-sts Action again for a fresh one`);
  }
}

function signatureHolds(jws: CompactJws, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== 'ed25519') return false;
  return signatureVerifies(jws, null, key);
}

export async function checkAccessToken(token: string, options: CheckOptions): Promise<AccessTokenClaims> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new DeployTokenError('malformed', 'the bearer token is empty or too long');
  }
  const jws = decodeCompactJws(token);
  if (!jws) throw new DeployTokenError('malformed', 'the bearer token is not a compact JWS (header.payload.signature)');
  const kid = checkHeader(jws.header);
  const key = await options.keyFor(kid);
  if (!key) throw new DeployTokenError('unknown_key', `no key of ${options.issuer} has kid ${quote(kid)}: the token was not signed by this issuer, or its key was retired long ago`);
  if (!signatureHolds(jws, key)) throw new DeployTokenError('bad_signature', 'the token signature does not verify');
  const claims = checkShape(jws.payload);
  checkLifetime(claims);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  checkIssuedAt(claims, now, options.clockToleranceSeconds ?? 0);
  checkIssuer(claims, options.issuer);
  if (options.audience !== undefined) checkAudience(claims, options.audience);
  if (!options.allowExpired) checkExpiry(claims, now, options.clockToleranceSeconds ?? 0);
  return claims;
}
