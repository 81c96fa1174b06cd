/**
 * Introspection (RFC 7662) and revocation (RFC 7009) under attack. Introspection needs the token itself as the
 * Bearer credential or the operator secret; revoked, expired, forged and foreign tokens are `{"active": false}` and
 * nothing more; revocation answers 200 to anything, yet only a genuine token of ours revokes anything — a forged
 * token carrying someone else's jti revokes nothing.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAccessToken } from '../../exchange-service/access-token/mint.js';
import { claimsOf, withPayload } from '../helpers/forge.js';
import { exchangeToken, postForm, tempDir } from '../helpers/service.js';
import { lastAuditId, nowSeconds, startSuite, type Suite } from './support.js';

const SECRET = 'operator-secret-5f1c0c2b7d-9a8e7f6d5c4b';

let suite: Suite;
let secretDir: string;

beforeAll(async () => {
  secretDir = tempDir('deploy-sts-secret-');
  const file = join(secretDir, 'introspect-secret');
  writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
  suite = await startSuite({ env: { DEPLOY_STS_INTROSPECT_SECRET_FILE: file } });
});
afterAll(async () => {
  await suite?.stop();
  rmSync(secretDir, { recursive: true, force: true });
});

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const operator = basic('deploy-platform', SECRET);
const introspect = (token: string, headers: Record<string, string> = {}) => postForm(`${suite.svc.url}/introspect`, { token }, headers);
const revoke = (token: string) => postForm(`${suite.svc.url}/revoke`, { token });

async function deployToken(): Promise<string> {
  const res = await exchangeToken(suite.svc.url, await suite.issuer.token());
  expect(res.status).toBe(200);
  return String(res.body.access_token);
}

/** A token signed with our active key, as minted `ageSeconds` ago for `ttlSeconds`. */
async function mintedAgo(ageSeconds: number, ttlSeconds: number): Promise<string> {
  const minted = await mintAccessToken(suite.svc.service.keys.active(), {
    issuer: suite.svc.url,
    audience: 'deploy-api',
    site: 'docs',
    org: 'acme',
    scope: 'deployments:write',
    context: 'production',
    ttlSeconds,
    actor: { iss: 'https://token.actions.githubusercontent.com', repository: 'acme/docs', repository_id: '892043217', run_id: '1', run_attempt: '1', workflow_ref: undefined, sha: 'abc', event_name: 'push', ref: 'refs/heads/main' },
    now: nowSeconds() - ageSeconds,
  });
  return minted.token;
}

/** A token shaped exactly like ours, with our kid, signed by someone else's key. */
async function forgedLike(genuine: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA');
  const header = JSON.parse(Buffer.from(genuine.split('.')[0]!, 'base64url').toString()) as { kid: string };
  return new SignJWT({ ...claimsOf(genuine), ...overrides }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: header.kid }).sign(privateKey);
}

describe('who may introspect', () => {
  it('refuses no credentials with 401 invalid_client and a WWW-Authenticate challenge', async () => {
    const res = await introspect(await deployToken());
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(res.body).not.toHaveProperty('active');
  });

  it('refuses a holder presenting another token as its credential', async () => {
    const mine = await deployToken();
    const theirs = await deployToken();
    const res = await introspect(theirs, { authorization: `Bearer ${mine}` });
    expect(res.status).toBe(401);
    expect(res.body).not.toHaveProperty('active');
  });

  for (const [name, headers] of [
    ['a wrong operator secret (Basic)', basic('deploy-platform', 'wrong')],
    ['a wrong operator secret (Bearer)', { authorization: 'Bearer wrong' }],
    ['the secret with a suffix', basic('deploy-platform', `${SECRET}x`)],
    ['an empty Basic secret', basic('deploy-platform', '')],
    ['the secret as the Basic user name', { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString('base64')}` }],
    ['a malformed Authorization header', { authorization: `Basic ${SECRET}!!` }],
  ] as const) {
    it(`refuses ${name} with 401`, async () => {
      const res = await introspect(await deployToken(), headers);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.body).not.toHaveProperty('active');
    });
  }

  it('answers the operator secret (Basic or Bearer) with the token\'s claims', async () => {
    const token = await deployToken();
    for (const headers of [operator, { authorization: `Bearer ${SECRET}` }]) {
      const res = await introspect(token, headers);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ active: true, site: 'docs', context: 'production', jti: claimsOf(token).jti });
    }
  });

  it('answers 405 to GET /introspect', async () => {
    const res = await fetch(`${suite.svc.url}/introspect?token=x`, { headers: operator });
    expect(res.status).toBe(405);
  });
});

describe('inactive tokens say {"active": false} and nothing else', () => {
  it('a revoked token, to its holder and to the operator', async () => {
    const token = await deployToken();
    expect((await revoke(token)).status).toBe(200);
    expect((await introspect(token, { authorization: `Bearer ${token}` })).body).toEqual({ active: false });
    expect((await introspect(token, operator)).body).toEqual({ active: false });
  });

  it('an expired token', async () => {
    const token = await mintedAgo(7200, 600);
    expect((await introspect(token, operator)).body).toEqual({ active: false });
    expect((await introspect(token, { authorization: `Bearer ${token}` })).body).toEqual({ active: false });
  });

  it('a token signed with our key that lives longer than the longest TTL (exp - iat over 1 h): not one we mint', async () => {
    // Whoever can sign with a stolen or planted key could otherwise mint year-long tokens.
    expect((await introspect(await mintedAgo(0, 3601), operator)).body).toEqual({ active: false });
    expect((await introspect(await mintedAgo(0, 365 * 86400), operator)).body).toEqual({ active: false });
    expect((await introspect(await mintedAgo(0, 3600), operator)).body).toMatchObject({ active: true });
  });

  it('a token forged with our kid and another key', async () => {
    expect((await introspect(await forgedLike(await deployToken()), operator)).body).toEqual({ active: false });
  });

  it('a genuine token whose claims were changed', async () => {
    const token = await deployToken();
    const tampered = withPayload(token, { ...claimsOf(token), site: 'blog', scope: 'deployments:write sites:read' });
    expect((await introspect(tampered, operator)).body).toEqual({ active: false });
  });

  it('a GitHub OIDC token, and a string that is no token at all', async () => {
    expect((await introspect(await suite.issuer.token(), operator)).body).toEqual({ active: false });
    expect((await introspect('not-a-token', operator)).body).toEqual({ active: false });
  });

  it('a token minted by another deploy-sts (another issuer URL, another key)', async () => {
    const other = await startSuite();
    try {
      const res = await exchangeToken(other.svc.url, await other.issuer.token());
      expect((await introspect(String(res.body.access_token), operator)).body).toEqual({ active: false });
    } finally {
      await other.stop();
    }
  });
});

describe('revocation', () => {
  it('answers 200 to tokens it never issued, and to expired ones', async () => {
    for (const token of ['not-a-token', 'a.b.c', await suite.issuer.token(), await mintedAgo(7200, 600)]) {
      const res = await revoke(token);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
    }
  });

  it('is idempotent', async () => {
    const token = await deployToken();
    expect((await revoke(token)).status).toBe(200);
    expect((await revoke(token)).status).toBe(200);
    expect((await introspect(token, operator)).body).toEqual({ active: false });
  });

  it('a forged token carrying a live token\'s jti revokes nothing', async () => {
    const victim = await deployToken();
    expect((await revoke(await forgedLike(victim))).status).toBe(200);
    expect((await revoke(withPayload(victim, { ...claimsOf(victim), exp: nowSeconds() + 1 }))).status).toBe(200);
    expect(await suite.svc.service.storage.isRevoked(String(claimsOf(victim).jti))).toBe(false);
    expect((await introspect(victim, operator)).body).toMatchObject({ active: true });
  });

  it('refuses a request without a token, or with two', async () => {
    const none = await postForm(`${suite.svc.url}/revoke`, {});
    expect(none.status).toBe(400);
    expect(none.body.error).toBe('invalid_request');
    const two = await postForm(`${suite.svc.url}/revoke`, { token: ['a', 'b'] });
    expect(two.status).toBe(400);
    expect(two.body.error).toBe('invalid_request');
  });

  it('introspection and revocation leave the audit log of token decisions untouched (a revocation lives in the revocation list)', async () => {
    const token = await deployToken();
    const before = await lastAuditId(suite.svc);
    await introspect(token, operator);
    await introspect(token);
    await revoke(token);
    await revoke('not-a-token');
    expect(await lastAuditId(suite.svc)).toBe(before);
  });
});
