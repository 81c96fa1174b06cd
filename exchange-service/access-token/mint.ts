/** Mint the deploy token: an RFC 9068 JWT access token (`typ: at+jwt`) signed with the active key. */
import { sign, type KeyObject } from 'node:crypto';
import type { Context } from '../policy/types.js';
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP, type AccessTokenClaims, type Actor } from './claims.js';
import { timeOrderedId } from './jti.js';

/** The key that signs: the key ring's active key. */
export interface SigningKeyRef {
  kid: string;
  keyObject: KeyObject;
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

export async function mintAccessToken(key: SigningKeyRef, input: MintInput): Promise<Minted> {
  // Time-ordered (UUIDv7): the audit log's index on minted jtis grows at its end (jti.ts).
  const jti = timeOrderedId();
  const expiresAt = input.now + input.ttlSeconds;
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    aud: input.audience,
    sub: `site:${input.site}`,
    iat: input.now,
    exp: expiresAt,
    jti,
    client_id: `github-actions:${input.actor.repository_id}`,
    scope: input.scope,
    site: input.site,
    context: input.context,
    act: { sub: `repo:${input.actor.repository}`, ...input.actor },
    ...(input.org ? { org: input.org } : {}),
  };
  // A compact JWS (RFC 7515) signed with node:crypto directly: Ed25519 signing is ~20 µs, and a WebCrypto job per
  // token costs more on the event loop than the signature itself (BENCHMARKS.md). Tests verify these tokens with jose.
  const header = { alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: key.kid };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign(null, Buffer.from(signingInput), key.keyObject).toString('base64url');
  const token = `${signingInput}.${signature}`;
  return { token, jti, issuedAt: input.now, expiresAt };
}
