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

/** The encoded header of the last key that signed (the same for every token of a key): `{ alg, typ, kid }`. */
let header: { kid: string; encoded: string } | undefined;

function encodedHeader(kid: string): string {
  if (header?.kid !== kid) {
    header = { kid, encoded: Buffer.from(JSON.stringify({ alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid })).toString('base64url') };
  }
  return header.encoded;
}

/**
 * Scratch bytes for the claims' JSON and the token, reused by every mint (synchronous from start to end). For speed:
 * the signing input is assembled here and signed in place, and the token read out of it as one flat string, instead
 * of Buffers per part, a concatenated signing input flattened and copied to be signed, and a concatenated token
 * flattened again when the answer is serialised. A token too large for it (never in practice) gets its own bytes.
 */
const SCRATCH = Buffer.allocUnsafe(32 * 1024);
const DOT = 0x2e;

/**
 * `{ sub, ...actor }`, written out in Actor's key order (the order the exchange builds it in): a spread after
 * `sub` copied the actor key by key through the runtime on every mint.
 */
function actClaim(actor: Actor): AccessTokenClaims['act'] {
  return {
    sub: `repo:${actor.repository}`,
    iss: actor.iss,
    repository: actor.repository,
    repository_id: actor.repository_id,
    run_id: actor.run_id,
    run_attempt: actor.run_attempt,
    workflow_ref: actor.workflow_ref,
    sha: actor.sha,
    event_name: actor.event_name,
    ref: actor.ref,
  };
}

/** Synchronous: it awaits nothing, and an async mint cost every exchange a promise. */
export function mintAccessToken(key: SigningKeyRef, input: MintInput): Minted {
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
    act: actClaim(input.actor),
  };
  if (input.org) claims.org = input.org;
  // A compact JWS (RFC 7515) signed with node:crypto directly: Ed25519 signing is ~20 µs, and a WebCrypto job per
  // token costs more on the event loop than the signature itself (BENCHMARKS.md). Tests verify these tokens with jose.
  const json = JSON.stringify(claims);
  const encodedHeaderText = encodedHeader(key.kid);
  // Upper bounds: UTF-8 is at most 3 bytes a UTF-16 unit; base64 4 characters per 3 bytes; an Ed25519 signature 86.
  const jsonBytes = json.length * 3;
  const tokenBytes = encodedHeaderText.length + 1 + Math.ceil(jsonBytes / 3) * 4 + 1 + 128;
  const bytes = jsonBytes + tokenBytes <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(jsonBytes + tokenBytes);
  // The claims' UTF-8 at the end of the scratch; the token from its start.
  const jsonLength = bytes.write(json, tokenBytes, 'utf8');
  const payload = bytes.toString('base64url', tokenBytes, tokenBytes + jsonLength);
  let n = bytes.write(encodedHeaderText, 0, 'latin1');
  bytes[n++] = DOT;
  n += bytes.write(payload, n, 'latin1');
  const signature = sign(null, bytes.subarray(0, n), key.keyObject);
  bytes[n++] = DOT;
  n += bytes.write(signature.toString('base64url'), n, 'latin1');
  const token = bytes.toString('latin1', 0, n);
  return { token, jti, issuedAt: input.now, expiresAt };
}
