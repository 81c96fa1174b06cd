/**
 * Hostile tokens, crafted by hand: what an attacker sends instead of a GitHub OIDC token. Every part (header,
 * payload, signature) can be chosen freely, including shapes no JOSE library would produce, and a loopback
 * server counts any request a token's `jku` / `x5u` header could lure the service into making.
 */
import { createHmac, createPublicKey, createSign, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

export type Json = Record<string, unknown>;

/** base64url of a string, a buffer, or the JSON of anything else. */
export function b64url(value: unknown): string {
  if (typeof value === 'string') return Buffer.from(value, 'utf8').toString('base64url');
  if (Buffer.isBuffer(value)) return value.toString('base64url');
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Join already-encoded parts with dots: `compact(h, p, s)`. */
export function compact(...parts: string[]): string {
  return parts.join('.');
}

/** `alg: none`: a header and claims with an empty signature (and, with `signature`, a fake one). */
export function unsignedToken(header: Json, claims: Json, signature = ''): string {
  return compact(b64url({ typ: 'JWT', ...header, alg: header.alg ?? 'none' }), b64url(claims), signature);
}

/** The issuer's RSA public key as PEM (SPKI), from its JWK. */
export function publicKeyPem(jwk: JWK): string {
  return createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The classic key-confusion attack: HS256 with the issuer's RSA public key (which anyone can fetch) as the HMAC
 * secret, hoping the verifier feeds "the issuer's key" to whatever algorithm the header names.
 */
export function hmacWithPublicKey(header: Json, claims: Json, secret: string | Buffer): string {
  const input = compact(b64url({ typ: 'JWT', ...header, alg: header.alg ?? 'HS256' }), b64url(claims));
  return compact(input, createHmac('sha256', secret).update(input).digest('base64url'));
}

/** An attacker's own RSA key: signs RS256 over any header and any payload (even ones a JOSE library refuses). */
export interface Forger {
  kid: string;
  publicJwk: JWK;
  /** Sign `header` (alg defaults to RS256) over `payload` (an object, or raw text for malformed payloads). */
  sign(header: Json, payload: Json | string): string;
}

export function createForger(): Forger {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `forged-${randomUUID().slice(0, 8)}`;
  const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    publicJwk,
    sign(header, payload) {
      const input = compact(b64url({ alg: 'RS256', typ: 'JWT', ...header }), b64url(payload));
      return compact(input, rsaSign(privateKey, input));
    },
  };
}

function rsaSign(key: KeyObject, input: string): string {
  return createSign('RSA-SHA256').update(input).sign(key).toString('base64url');
}

/** Replace the payload of a signed token, keeping its header and signature (a tampering attempt). */
export function withPayload(token: string, claims: Json): string {
  const [header, , signature] = token.split('.');
  return compact(header!, b64url(claims), signature!);
}

/** Decode the claims of a compact JWS without verifying it. */
export function claimsOf(token: string): Json {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Json;
}

/** A loopback server that answers every request with an empty JWK set and counts what it received. */
export interface HitCounter {
  url: string;
  hits(): number;
  close(): Promise<void>;
}

export async function startHitCounter(): Promise<HitCounter> {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.setHeader('content-type', 'application/json');
    res.end('{"keys":[]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
