/**
 * Our access token — the deploy token — as one concept: the JWS algorithm and type it is signed with, its claim set
 * (RFC 9068 plus `site`, `context`, `org` and the `act` of the GitHub run that asked), and what introspection shows
 * of it. Minting (mint.ts) builds exactly this type and verifying (verify.ts) resolves exactly this type.
 */
import type { Context } from '../policy/types.js';

/** The signature algorithm: EdDSA over the key ring's Ed25519 keys (see keys/key-ring.ts for why Ed25519). */
export const ACCESS_TOKEN_ALG = 'EdDSA';
/** RFC 9068 §2.1: the `typ` header of a JWT access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** The GitHub identity that asked, carried in the `act` claim. */
export interface Actor {
  /** The OIDC issuer of the GitHub token (a policy binds one: github.com or a GHES). */
  iss: string;
  repository: string;
  repository_id: string;
  run_id: string;
  run_attempt: string;
  workflow_ref: string | undefined;
  sha: string;
  event_name: string;
  ref: string;
}

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** `site:<slug>`. */
  sub: string;
  iat: number;
  exp: number;
  jti: string;
  /** `github-actions:<repository_id>`. */
  client_id: string;
  /** Space-separated permissions. */
  scope: string;
  site: string;
  context: Context;
  /** The organisation whose org file granted the token, when one did. */
  org?: string;
  act: Actor & { sub: string };
}

/** RFC 7662 §2.2: the answer of /introspect for a live token. */
export function introspection(claims: AccessTokenClaims): Record<string, unknown> {
  const { iss, aud, sub, exp, iat, jti, scope, site, context, org, act, client_id } = claims;
  return { active: true, token_type: 'Bearer', iss, aud, sub, exp, iat, jti, scope, site, context, client_id, ...(org ? { org } : {}), act };
}
