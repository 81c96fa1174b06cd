/**
 * What a relying party requires of a verified deploy token, each a named check that throws DeployTokenError:
 * the site, a permission (write implies read), the context. The token's own checks are access-token/check.ts.
 */
import type { AccessTokenClaims } from '../access-token/claims.js';
import { DeployTokenError } from '../access-token/errors.js';
import { implies } from '../policy/permissions.js';

export type DeployContext = 'production' | 'preview';
/** The claims of a deploy token (the service's own AccessTokenClaims). */
export type DeployTokenClaims = AccessTokenClaims;

const quote = (value: string) => JSON.stringify(value.slice(0, 200));

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

/** `production` needs a production token; a preview may be deployed by either. */
export function checkContext(claims: DeployTokenClaims, needed: DeployContext): void {
  if (needed === 'production' && claims.context !== 'production') {
    throw new DeployTokenError('wrong_context', `a ${claims.context} token cannot deploy to production: only a token from a production rule can`);
  }
}
