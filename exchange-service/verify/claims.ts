/**
 * The checks a relying party makes on a deploy token, each a named function that throws DeployTokenError with its
 * reason. Pure: no keys, no clock, no I/O (the signature is checked in token.ts).
 */
import { implies } from '../policy/permissions.js';
import { DeployTokenError } from './errors.js';

export type DeployContext = 'production' | 'preview';

/** The claims every deploy token carries (RFC 9068 plus `site`, `scope`, `context`). */
export interface DeployTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  jti: string;
  exp: number;
  iat: number;
  /** The deploy-sts site slug. */
  site: string;
  /** Space-separated permissions, e.g. `deployments:write`. */
  scope: string;
  context: DeployContext;
  client_id?: string;
  org?: string;
  /** Who asked: the GitHub repository, workflow, run. */
  act?: Record<string, unknown>;
}

export const TOKEN_TYPE = 'at+jwt';
export const TOKEN_ALG = 'EdDSA';

const quote = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value.slice(0, 200)) : String(value));

export function checkHeader(header: Record<string, unknown>): void {
  if (header.typ !== TOKEN_TYPE) throw new DeployTokenError('unsupported_token', `typ ${quote(header.typ)} is not ${TOKEN_TYPE}: this is not a deploy-sts access token`);
  if (header.alg !== TOKEN_ALG) throw new DeployTokenError('unsupported_token', `alg ${quote(header.alg)} is not ${TOKEN_ALG}`);
  if (header.crit !== undefined) throw new DeployTokenError('unsupported_token', 'the token has a crit header, which deploy tokens never carry');
  if (typeof header.kid !== 'string' || header.kid === '') throw new DeployTokenError('malformed', 'the token header names no kid');
}

/** The claim shapes, so that later checks read typed values. */
export function checkShape(payload: Record<string, unknown>): DeployTokenClaims {
  for (const claim of ['iss', 'aud', 'sub', 'jti', 'site', 'scope', 'context'] as const) {
    if (typeof payload[claim] !== 'string') throw new DeployTokenError('malformed', `the token's ${claim} claim is missing or not a string`);
  }
  for (const claim of ['exp', 'iat'] as const) {
    if (typeof payload[claim] !== 'number' || !Number.isFinite(payload[claim])) throw new DeployTokenError('malformed', `the token's ${claim} claim is missing or not a number`);
  }
  if (payload.context !== 'production' && payload.context !== 'preview') throw new DeployTokenError('malformed', `the token's context ${quote(payload.context)} is neither production nor preview`);
  return payload as unknown as DeployTokenClaims;
}

export function checkIssuer(claims: DeployTokenClaims, issuer: string): void {
  if (claims.iss !== issuer) throw new DeployTokenError('wrong_issuer', `the token was issued by ${quote(claims.iss)}, not ${quote(issuer)}`);
}

export function checkAudience(claims: DeployTokenClaims, audience: string): void {
  if (claims.aud !== audience) {
    throw new DeployTokenError('wrong_audience', `the token is for audience ${quote(claims.aud)}, not ${quote(audience)}: it was minted for another relying party`);
  }
}

/** `now` in unix seconds; a token is valid strictly before exp (plus the tolerance). */
export function checkExpiry(claims: DeployTokenClaims, now: number, toleranceSeconds = 0): void {
  if (claims.exp + toleranceSeconds <= now) {
    throw new DeployTokenError('expired', `the token expired at ${new Date(claims.exp * 1000).toISOString()}; run the deploy-sts Action again for a fresh one`);
  }
}

export function checkSite(claims: DeployTokenClaims, site: string): void {
  if (claims.site !== site) throw new DeployTokenError('wrong_site', `the token is for site ${quote(claims.site)}, not ${quote(site)}`);
}

/** Write implies read on the same resource (deployments:write allows deployments:read). */
export function hasScope(claims: Pick<DeployTokenClaims, 'scope'>, permission: string): boolean {
  return claims.scope.split(' ').some((granted) => granted !== '' && implies(granted, permission));
}

export function checkScope(claims: DeployTokenClaims, permission: string): void {
  if (!hasScope(claims, permission)) {
    throw new DeployTokenError('insufficient_scope', `the token's scope ${quote(claims.scope)} does not include ${permission}: grant it in the site's policy rule`);
  }
}

/** `production` needs a production token; `preview` is allowed to both (a production token may deploy a preview). */
export function checkContext(claims: DeployTokenClaims, needed: DeployContext): void {
  if (needed === 'production' && claims.context !== 'production') {
    throw new DeployTokenError('wrong_context', `a ${claims.context} token cannot deploy to production: only a token from a production rule can`);
  }
}
