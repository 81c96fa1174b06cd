/**
 * Verify a deploy token for a relying party: the token's checks (access-token/check.ts: header, key, signature,
 * claim set, issuer, audience, expiry), then what the relying party requires (site, scope, context).
 */
import { checkAccessToken, type CheckOptions } from '../access-token/check.js';
import { checkContext, checkScope, checkSite, type DeployContext, type DeployTokenClaims } from './claims.js';

/** What the relying party needs this token to allow. */
export interface Requirement {
  site?: string;
  /** A permission such as `deployments:write` (write implies read). */
  scope?: string;
  /** `production` refuses preview tokens. */
  context?: DeployContext;
}

export interface VerifyOptions extends Omit<CheckOptions, 'audience' | 'allowExpired'> {
  /** The `aud` your API expects. */
  audience: string;
}

/** Site, scope and context against the verified claims. */
export function checkRequirement(claims: DeployTokenClaims, require: Requirement): void {
  if (require.site !== undefined) checkSite(claims, require.site);
  if (require.scope !== undefined) checkScope(claims, require.scope);
  if (require.context !== undefined) checkContext(claims, require.context);
}

export async function verifyDeployToken(token: string, options: VerifyOptions, require: Requirement = {}): Promise<DeployTokenClaims> {
  const claims = await checkAccessToken(token, options);
  checkRequirement(claims, require);
  return claims;
}
