/**
 * A stand-in for GitHub's OIDC issuer on loopback: serves the discovery document and JWKS over real HTTP,
 * signs RS256 tokens shaped exactly as GitHub's (string claims, exp = iat + 300, nbf backdated), and counts
 * the requests it receives so tests can prove there is no fetch storm.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { CompactSign, SignJWT, exportJWK, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { githubShapedClaims } from '../../exchange-service/dev-issuer.js';

export interface TestIssuer {
  /** e.g. http://127.0.0.1:41234 — the `iss` of every token it signs. */
  url: string;
  /** Requests received, by path. */
  requests: Record<string, number>;
  kid: string;
  /** Sign a GitHub-shaped token; `claims` override or (with `undefined`) delete defaults. */
  token(claims?: Partial<GitHubTokenClaims> & Record<string, unknown>, options?: SignOptions): Promise<string>;
  /**
   * Sign a payload given as exact JSON text (number encodings such as `1.7e9`, duplicate keys): what a misbehaving
   * issuer could sign. Signed with the issuer's current key, header as `token`'s.
   */
  tokenFromText(payload: string): Promise<string>;
  /** Claims a token would carry, without signing (for fixtures). */
  claims(claims?: Partial<GitHubTokenClaims> & Record<string, unknown>): Record<string, unknown>;
  /** Add a second key to the JWKS (rotation at the issuer). Returns its kid. */
  rotate(): Promise<string>;
  /** Make the JWKS endpoint fail (status) or hang, to test fail-closed paths. */
  setJwksBehaviour(b: 'ok' | 'error' | 'hang' | 'huge'): void;
  publicJwks(): { keys: JWK[] };
  close(): Promise<void>;
}

export interface SignOptions {
  /** Sign with this kid (must be one of the issuer's) or a foreign key. */
  kid?: string;
  header?: Record<string, unknown>;
  /** Use a key that is not in the JWKS (a forger's key) while claiming `kid`. */
  foreignKey?: boolean;
}

export interface GitHubTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  repository: string;
  repository_id: string;
  repository_owner: string;
  repository_owner_id: string;
  repository_visibility: string;
  ref: string;
  ref_type: string;
  ref_protected: string;
  sha: string;
  event_name: string;
  environment: string;
  workflow: string;
  workflow_ref: string;
  workflow_sha: string;
  job_workflow_ref: string;
  job_workflow_sha: string;
  run_id: string;
  run_number: string;
  run_attempt: string;
  runner_environment: string;
  actor: string;
  actor_id: string;
  head_ref: string;
  base_ref: string;
}

export const DEFAULT_AUDIENCE = 'https://deploy-sts.test';

/** The claims GitHub puts in a token for `push` to main of acme/docs running the pinned deploy workflow. */
export function githubClaims(
  iss: string,
  overrides: Partial<GitHubTokenClaims> & Record<string, unknown> = {},
): Record<string, unknown> {
  return githubShapedClaims(iss, DEFAULT_AUDIENCE, overrides);
}

interface KeyEntry {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(): Promise<KeyEntry> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID().replaceAll('-', '').slice(0, 16);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicJwk };
}

export async function startIssuer(options: { path?: string } = {}): Promise<TestIssuer> {
  const keys: KeyEntry[] = [await newKey()];
  const foreign = await newKey();
  const requests: Record<string, number> = {};
  let behaviour: 'ok' | 'error' | 'hang' | 'huge' = 'ok';
  const prefix = options.path ?? '';
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests[path] = (requests[path] ?? 0) + 1;
    if (path === `${prefix}/.well-known/openid-configuration`) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/.well-known/jwks`, id_token_signing_alg_values_supported: ['RS256'] }));
      return;
    }
    if (path === `${prefix}/.well-known/jwks`) {
      if (behaviour === 'error') {
        res.statusCode = 500;
        res.end('boom');
        return;
      }
      if (behaviour === 'hang') {
        hanging.add(res);
        return;
      }
      res.setHeader('content-type', 'application/json');
      if (behaviour === 'huge') {
        res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk), padding: 'x'.repeat(2_000_000) }));
        return;
      }
      res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}${prefix}`;

  const claims = (overrides: Partial<GitHubTokenClaims> & Record<string, unknown> = {}) => githubClaims(url, overrides);

  return {
    url,
    requests,
    get kid() {
      return keys[0]!.kid;
    },
    claims,
    async token(overrides = {}, opts = {}) {
      const entry = opts.foreignKey ? foreign : (keys.find((k) => k.kid === opts.kid) ?? keys[0]!);
      const kid = opts.kid ?? keys[0]!.kid;
      const header = { alg: 'RS256', typ: 'JWT', kid, x5t: 'test', ...opts.header };
      return new SignJWT(claims(overrides) as Record<string, unknown>).setProtectedHeader(header as never).sign(entry.privateKey);
    },
    async tokenFromText(payload) {
      const entry = keys[0]!;
      return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: entry.kid, x5t: 'test' }).sign(entry.privateKey);
    },
    async rotate() {
      const k = await newKey();
      keys.unshift(k);
      return k.kid;
    },
    setJwksBehaviour(b) {
      behaviour = b;
    },
    publicJwks() {
      return { keys: keys.map((k) => k.publicJwk) };
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
