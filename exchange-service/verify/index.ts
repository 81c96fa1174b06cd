/**
 * `deploy-sts/verify`: check a deploy-sts token in a deploy API (a relying party).
 *
 *   import { createVerifier } from 'deploy-sts/verify';
 *   const verifier = createVerifier({ issuer: 'https://sts.example.com', audience: 'https://deploy.example.com' });
 *   const claims = await verifier.verify(bearer, { site: 'docs', scope: 'deployments:write', context: 'production' });
 *
 * Keys come from the issuer's RFC 8414 metadata (`jwks_uri`), cached; refusals are DeployTokenError with a stable
 * `code` and the HTTP `status` to answer. The deploy gateway uses the same checks with the service's own key ring.
 */
import { DeployTokenError } from '../access-token/errors.js';
import { issuerKeys, type IssuerKeysOptions } from './issuer-keys.js';
import { verifyDeployToken, type Requirement } from './token.js';
import type { DeployTokenClaims } from './claims.js';

export { DEPLOY_TOKEN_ERROR_CODES, DeployTokenError, type DeployTokenErrorCode } from '../access-token/errors.js';
export { hasScope, type DeployContext, type DeployTokenClaims } from './claims.js';
export { verifyDeployToken, type Requirement, type VerifyOptions } from './token.js';
export { issuerKeys, type IssuerKeys, type IssuerKeysOptions } from './issuer-keys.js';

export interface VerifierOptions extends IssuerKeysOptions {
  /** The deploy-sts public URL (the tokens' `iss`). */
  issuer: string;
  /** Your API's audience: the `token_audience` of the site's policy (or the service's DEPLOY_STS_TOKEN_AUDIENCE). */
  audience: string;
  /** Leeway for clock skew on exp (default 5 s). */
  clockToleranceSeconds?: number;
}

export interface Verifier {
  /** The token's claims, or a DeployTokenError. `require` adds site, scope and context checks. */
  verify(token: string, require?: Requirement): Promise<DeployTokenClaims>;
}

export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = options.issuer.replace(/\/$/, '');
  const keys = issuerKeys(issuer, options);
  return {
    verify: (token, require) =>
      verifyDeployToken(token, { issuer, audience: options.audience, keyFor: (kid) => keys.keyFor(kid), clockToleranceSeconds: options.clockToleranceSeconds ?? 5 }, require),
  };
}

/** The bearer token of an `Authorization` header value, or a DeployTokenError (`malformed`). */
export function bearerToken(authorization: string | undefined | null): string {
  const match = authorization ? /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim()) : null;
  if (!match) throw new DeployTokenError('malformed', 'send the deploy token as Authorization: Bearer <token>');
  return match[1]!;
}
