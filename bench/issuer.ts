/**
 * The benchmark's stand-in for GitHub's OIDC issuer: one RSA-2048 key, the discovery document and JWKS served
 * over HTTP on 127.0.0.1, and tokens shaped as GitHub's (string claims, exp = iat + 300, nbf backdated).
 * Signing uses node:crypto directly so worker threads can sign a token pool fast (see token-pool.ts).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { githubShapedClaims as githubClaims } from '../exchange-service/dev-issuer.js';

/** The audience every benchmark token carries; the service under test is started with it. */
export const BENCH_AUDIENCE = 'https://deploy-sts.bench';

/** The kinds of token in the load mix. */
export type TokenKind = 'production' | 'preview' | 'denied';

export interface IssuerKey {
  kid: string;
  /** PKCS#8 PEM, handed to the signing workers. */
  privatePem: string;
  publicJwk: Record<string, unknown>;
}

export function newIssuerKey(): IssuerKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID().replaceAll('-', '').slice(0, 16);
  return {
    kid,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
  };
}

export function publicKeyOf(key: IssuerKey): KeyObject {
  return createPublicKey({ key: key.publicJwk as never, format: 'jwk' });
}

/**
 * The claims of a GitHub Actions token for acme/docs (repository id 892043217, the id the benchmark policies bind).
 * `production`: push to main in the production environment through the pinned deploy workflow.
 * `preview`: a fork pull request run on pull_request_target. `denied`: a push to a feature branch (no rule admits it).
 */
export function githubShapedClaims(iss: string, kind: TokenKind, now: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const ref = kind === 'denied' ? 'refs/heads/feature/bench' : 'refs/heads/main';
  const workflow = kind === 'preview' ? 'preview.yml' : 'deploy.yml';
  return githubClaims(
    iss,
    BENCH_AUDIENCE,
    {
      sub: kind === 'preview' ? 'repo:acme/docs:pull_request' : 'repo:acme/docs:environment:production',
      ref,
      run_id: String(7_000_000_000 + Math.floor(Math.random() * 1_000_000_000)),
      head_ref: kind === 'preview' ? 'contributor:patch-1' : '',
      base_ref: kind === 'preview' ? 'main' : '',
      event_name: kind === 'preview' ? 'pull_request_target' : 'push',
      ref_protected: kind === 'denied' ? 'false' : 'true',
      environment: kind === 'production' ? 'production' : undefined,
      workflow_ref: `acme/docs/.github/workflows/${workflow}@refs/heads/main`,
      job_workflow_ref: `acme/docs/.github/workflows/${workflow}@${kind === 'denied' ? ref : 'refs/heads/main'}`,
      ...overrides,
    },
    now,
  );
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An RS256 JWS with the header GitHub uses (alg, kid, typ, x5t). */
export function signRs256(claims: Record<string, unknown>, kid: string, key: KeyObject): string {
  const input = `${b64({ alg: 'RS256', kid, typ: 'JWT', x5t: kid })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

export function privateKeyOf(key: IssuerKey): KeyObject {
  return createPrivateKey(key.privatePem);
}

export interface RunningIssuer {
  url: string;
  key: IssuerKey;
  close(): Promise<void>;
}

/** Serve the discovery document and the JWKS on 127.0.0.1 (the service fetches them once and caches them). */
export async function startIssuer(key: IssuerKey): Promise<RunningIssuer> {
  let url = '';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('content-type', 'application/json');
    if (path === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/.well-known/jwks`, id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (path === '/.well-known/jwks') {
      res.end(JSON.stringify({ keys: [key.publicJwk] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    key,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
