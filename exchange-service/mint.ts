/** Mint the deploy token: an RFC 9068 JWT access token (`typ: at+jwt`) signed with the active key. */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SigningKey } from './keys/key-ring.js';
import { SIGNING_ALG } from './keys/key-ring.js';
import type { Context } from './policy/types.js';

/** The GitHub identity that asked, carried in the `act` claim. */
export interface Actor {
  repository: string;
  repository_id: string;
  run_id: string;
  run_attempt: string;
  workflow_ref: string | undefined;
  sha: string;
  event_name: string;
  ref: string;
}

export interface MintInput {
  issuer: string;
  audience: string;
  site: string;
  org: string | undefined;
  scope: string;
  context: Context;
  ttlSeconds: number;
  actor: Actor;
  /** Unix seconds. */
  now: number;
}

export interface Minted {
  token: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

export async function mintAccessToken(key: SigningKey, input: MintInput): Promise<Minted> {
  const jti = randomUUID();
  const expiresAt = input.now + input.ttlSeconds;
  const claims: Record<string, unknown> = {
    client_id: `github-actions:${input.actor.repository_id}`,
    scope: input.scope,
    site: input.site,
    context: input.context,
    act: { sub: `repo:${input.actor.repository}`, ...input.actor },
  };
  if (input.org) claims.org = input.org;
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: SIGNING_ALG, typ: 'at+jwt', kid: key.kid })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(`site:${input.site}`)
    .setIssuedAt(input.now)
    .setExpirationTime(expiresAt)
    .setJti(jti)
    .sign(key.privateKey);
  return { token, jti, issuedAt: input.now, expiresAt };
}
