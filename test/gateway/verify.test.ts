/**
 * `deploy-sts/verify` as a relying party uses it: against a real service's metadata and JWKS, with real tokens
 * from real exchanges. Every refusal is a DeployTokenError with a code from the closed list and its HTTP status.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEPLOY_TOKEN_ERROR_CODES, DeployTokenError, createVerifier, issuerKeys, verifyDeployToken, type DeployTokenErrorCode,
} from '../../exchange-service/verify/index.js';
import { claimsOf } from '../helpers/forge.js';
import { exchangeToken } from '../helpers/service.js';
import { startSuite, type Suite } from '../security/support.js';

let suite: Suite;
const AUDIENCE = 'deploy-api';

beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

async function productionToken(): Promise<string> {
  const res = await exchangeToken(suite.svc.url, await suite.issuer.token());
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return String(res.body.access_token);
}

async function previewToken(): Promise<string> {
  const res = await exchangeToken(suite.svc.url, await suite.issuer.token({ event_name: 'pull_request_target', ref: 'refs/heads/main', environment: undefined, job_workflow_ref: 'acme/docs/.github/workflows/preview.yml@refs/heads/main' }));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.context).toBe('preview');
  return String(res.body.access_token);
}

/** A fetch that counts what it is asked for. */
function countingFetch(): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    fetch: (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<DeployTokenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeployTokenError);
  return error as DeployTokenError;
}

describe('a relying party verifying deploy tokens', () => {
  it('accepts a genuine token, with keys found through the RFC 8414 metadata', async () => {
    const counter = countingFetch();
    const verifier = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE, fetch: counter.fetch });
    const claims = await verifier.verify(await productionToken(), { site: 'docs', scope: 'deployments:write', context: 'production' });
    expect(claims).toMatchObject({ iss: suite.svc.url, aud: AUDIENCE, site: 'docs', context: 'production', scope: 'deployments:write' });
    expect(counter.urls).toEqual([`${suite.svc.url}/.well-known/oauth-authorization-server`, `${suite.svc.url}/.well-known/jwks.json`]);
    // Cached: a second token costs no fetch.
    await verifier.verify(await productionToken());
    expect(counter.urls).toHaveLength(2);
  });

  it('lets write imply read, and refuses a permission the token lacks', async () => {
    const verifier = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE });
    const token = await productionToken();
    await expect(verifier.verify(token, { scope: 'deployments:read' })).resolves.toMatchObject({ site: 'docs' });
    const error = await refusal(verifier.verify(token, { scope: 'domains:write' }));
    expect(error.code).toBe('insufficient_scope');
    expect(error.status).toBe(403);
  });

  it('refuses a token for another site', async () => {
    const error = await refusal(createVerifier({ issuer: suite.svc.url, audience: AUDIENCE }).verify(await productionToken(), { site: 'blog' }));
    expect(error.code).toBe('wrong_site');
    expect(error.message).toMatch(/"docs", not "blog"/);
  });

  it('refuses a preview token where production is needed, and accepts it for a preview', async () => {
    const verifier = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE });
    const token = await previewToken();
    expect((await refusal(verifier.verify(token, { context: 'production' }))).code).toBe('wrong_context');
    await expect(verifier.verify(token, { context: 'preview' })).resolves.toMatchObject({ context: 'preview' });
  });

  it('refuses a token minted for another audience', async () => {
    const error = await refusal(createVerifier({ issuer: suite.svc.url, audience: 'https://other-api.example' }).verify(await productionToken()));
    expect(error.code).toBe('wrong_audience');
    expect(error.status).toBe(401);
  });

  it('refuses an expired token', async () => {
    const token = await productionToken();
    const exp = claimsOf(token).exp as number;
    const keys = issuerKeys(suite.svc.url);
    const options = { issuer: suite.svc.url, audience: AUDIENCE, keyFor: (kid: string) => keys.keyFor(kid) };
    await expect(verifyDeployToken(token, { ...options, now: exp - 1 })).resolves.toMatchObject({ site: 'docs' });
    expect((await refusal(verifyDeployToken(token, { ...options, now: exp }))).code).toBe('expired');
  });

  it('refuses a forged signature, a wrong typ or alg, and garbage', async () => {
    const verifier = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE });
    const genuine = await productionToken();
    const kid = (JSON.parse(Buffer.from(genuine.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    const { privateKey } = await generateKeyPair('EdDSA');
    const forged = await new SignJWT(claimsOf(genuine)).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(privateKey);
    expect((await refusal(verifier.verify(forged))).code).toBe('bad_signature');
    const asJwt = await new SignJWT(claimsOf(genuine)).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid }).sign(privateKey);
    expect((await refusal(verifier.verify(asJwt))).code).toBe('unsupported_token');
    const [, payload, signature] = genuine.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${payload}.${signature}`;
    expect((await refusal(verifier.verify(none))).code).toBe('unsupported_token');
    expect((await refusal(verifier.verify('not-a-token'))).code).toBe('malformed');
  });

  it('refetches the keys for an unknown kid, at most once per cooldown', async () => {
    const counter = countingFetch();
    const verifier = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE, fetch: counter.fetch, cooldownSeconds: 3600 });
    await verifier.verify(await productionToken());
    expect(counter.urls).toHaveLength(2);
    const genuine = await productionToken();
    const [, payload, signature] = genuine.split('.');
    const withKid = (kid: string) => `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid })).toString('base64url')}.${payload}.${signature}`;
    for (const kid of ['made-up-1', 'made-up-2', 'made-up-3']) expect((await refusal(verifier.verify(withKid(kid)))).code).toBe('unknown_key');
    expect(counter.urls).toHaveLength(2); // fetched less than a cooldown ago: no refetch

    const eager = countingFetch();
    const fresh = createVerifier({ issuer: suite.svc.url, audience: AUDIENCE, fetch: eager.fetch, cooldownSeconds: 0 });
    await fresh.verify(genuine);
    await suite.svc.service.keys.rotate({ now: true }); // signs with the new key at once
    const afterRotation = await productionToken();
    await expect(fresh.verify(afterRotation)).resolves.toMatchObject({ site: 'docs' });
    expect(eager.urls).toHaveLength(4); // the new kid was fetched once
  });

  it('fails closed with keys_unavailable (503) when the issuer cannot be reached', async () => {
    const verifier = createVerifier({ issuer: 'http://127.0.0.1:9', audience: AUDIENCE, timeoutMs: 1000 });
    const error = await refusal(verifier.verify(await productionToken()));
    expect(error.code).toBe('keys_unavailable');
    expect(error.status).toBe(503);
  });

  it('fails closed without buffering an issuer whose metadata never ends (read with a byte cap)', async () => {
    let sent = 0;
    const endless = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (sent < 64 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 64 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      res.write('{"jwks_uri": "');
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = endless.address() as AddressInfo;
      const verifier = createVerifier({ issuer: `http://127.0.0.1:${port}`, audience: AUDIENCE, timeoutMs: 5000 });
      const error = await refusal(verifier.verify(await productionToken()));
      expect(error.code).toBe('keys_unavailable');
      // The read stopped at the cap (256 KiB), not at the end of 64 MiB.
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  it('uses only codes from the closed list', () => {
    const codes: DeployTokenErrorCode[] = ['malformed', 'unsupported_token', 'unknown_key', 'bad_signature', 'wrong_issuer', 'wrong_audience', 'expired', 'keys_unavailable', 'revoked', 'wrong_site', 'insufficient_scope', 'wrong_context'];
    expect([...DEPLOY_TOKEN_ERROR_CODES].sort()).toEqual([...codes].sort());
  });
});
