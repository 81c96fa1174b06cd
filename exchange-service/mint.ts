/** Mint the deploy token: an RFC 9068 JWT access token (`typ: at+jwt`) signed with the active key. */
import { randomUUID, sign } from 'node:crypto';
import type { SigningKey } from './keys/key-ring.js';
import { SIGNING_ALG } from './keys/key-ring.js';
import type { Context } from './policy/types.js';

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

const base64url = (text: string) => Buffer.from(text).toString('base64url');

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
  const payload = {
    iss: input.issuer,
    aud: input.audience,
    sub: `site:${input.site}`,
    iat: input.now,
    exp: expiresAt,
    jti,
    ...claims,
  };
  // A compact JWS (RFC 7515) signed with node:crypto directly: Ed25519 signing is ~20 µs, and a WebCrypto job per
  // token costs more on the event loop than the signature itself (BENCHMARKS.md). Tests verify these tokens with jose.
  const header = { alg: SIGNING_ALG, typ: 'at+jwt', kid: key.kid };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = sign(null, Buffer.from(signingInput), key.keyObject).toString('base64url');
  const token = `${signingInput}.${signature}`;
  return { token, jti, issuedAt: input.now, expiresAt };
}
