/**
 * No token, private key or secret in a log line or an audit record. A burst of grants, denials, protocol errors,
 * introspections and revocations — including clients that put a token in the wrong field — then every captured
 * log line and every audit row is searched for anything JWT-shaped, private key material, and each exact token and
 * secret that was used.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hmacWithPublicKey, publicKeyPem, unsignedToken } from '../helpers/forge.js';
import { exchangeToken, postForm, tempDir, TOKEN_EXCHANGE } from '../helpers/service.js';
import { startSuite, type Suite } from './support.js';

const SECRET = 'introspect-secret-9a7e61c4-2b3c4d5e6f7a8b9c';
const JWT_SHAPED = /eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*/;
const PRIVATE_KEY = /"d"\s*:|PRIVATE KEY/;

let suite: Suite;
let secretDir: string;
/** Every token and secret sent or received during the burst. */
const used = new Set<string>([SECRET]);

beforeAll(async () => {
  secretDir = tempDir('deploy-sts-secret-');
  writeFileSync(join(secretDir, 'secret'), SECRET);
  suite = await startSuite({ env: { DEPLOY_STS_INTROSPECT_SECRET_FILE: join(secretDir, 'secret'), DEPLOY_STS_LOG_LEVEL: 'debug' } });
});
afterAll(async () => {
  await suite?.stop();
  rmSync(secretDir, { recursive: true, force: true });
});

async function subject(claims: Record<string, unknown> = {}, options = {}): Promise<string> {
  const token = await suite.issuer.token(claims, options);
  used.add(token);
  return token;
}

async function burst(): Promise<void> {
  const url = suite.svc.url;
  const minted: string[] = [];

  // Grants, some concurrent.
  const grants = await Promise.all(Array.from({ length: 8 }, async () => exchangeToken(url, await subject())));
  for (const g of grants) {
    expect(g.status).toBe(200);
    minted.push(String(g.body.access_token));
  }
  minted.push(String((await exchangeToken(url, await subject({ event_name: 'pull_request_target' }))).body.access_token));
  for (const m of minted) used.add(m);

  // Denials of every kind.
  const replayed = await subject();
  await exchangeToken(url, replayed);
  await exchangeToken(url, replayed);
  await exchangeToken(url, await subject({}, { foreignKey: true }));
  await exchangeToken(url, await subject({ aud: 'https://github.com/acme' }));
  await exchangeToken(url, await subject({ ref: 'refs/heads/feature' }));
  await exchangeToken(url, await subject({ repository_id: '1' }));
  await exchangeToken(url, await subject(), 'unknown-site');
  await exchangeToken(url, await subject(), 'docs', { scope: 'sites:read' });
  const none = unsignedToken({ kid: suite.issuer.kid }, suite.issuer.claims());
  const hs = hmacWithPublicKey({ kid: suite.issuer.kid }, suite.issuer.claims(), publicKeyPem(suite.issuer.publicJwks().keys[0]!));
  used.add(none).add(hs);
  await exchangeToken(url, none);
  await exchangeToken(url, hs);
  await exchangeToken(url, minted[0]!); // a deploy token as a subject token

  // Clients that put a token in the wrong field.
  const misplaced = await subject();
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, grant_type: misplaced, subject_token: 'x', resource: 'site:docs' });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token_type: misplaced, subject_token: 'x', resource: 'site:docs' });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: 'x', resource: misplaced });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: 'x', resource: `site:${misplaced}` });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: 'x', resource: 'site:docs', requested_token_type: misplaced });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: await subject(), resource: 'site:docs', scope: misplaced });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: await subject(), resource: 'site:docs', scope: minted[1]! });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: [misplaced, misplaced], resource: 'site:docs' });
  await postForm(`${url}/token`, { ...TOKEN_EXCHANGE, subject_token: misplaced, resource: 'site:docs', padding: 'p'.repeat(40 * 1024) });
  await fetch(`${url}/token?subject_token=${misplaced}`);
  await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${misplaced}`, 'x-request-id': misplaced }, body: `{"subject_token": "${misplaced}", ` });
  await fetch(`${url}/no-such-endpoint/${misplaced}`);

  // Introspection and revocation.
  for (const m of minted.slice(0, 3)) {
    await postForm(`${url}/introspect`, { token: m }, { authorization: `Bearer ${m}` });
    await postForm(`${url}/introspect`, { token: m }, { authorization: `Basic ${Buffer.from(`platform:${SECRET}`).toString('base64')}` });
    await postForm(`${url}/introspect`, { token: m });
    await postForm(`${url}/introspect`, { token: m }, { authorization: 'Bearer wrong-secret' });
    await postForm(`${url}/revoke`, { token: m });
  }
  await postForm(`${url}/revoke`, { token: misplaced });
  await postForm(`${url}/introspect`, { token: misplaced }, { authorization: `Bearer ${SECRET}` });
}

describe('after a burst of grants, denials, introspections and revocations', () => {
  beforeAll(async () => {
    await burst();
  });

  it('the logs and the audit log hold plenty to search', async () => {
    expect(suite.svc.logs.length).toBeGreaterThan(40);
    const audit = await suite.svc.service.storage.listAudit({ limit: 1000 });
    expect(audit.length).toBeGreaterThan(25);
    // A deploy token sent as the scope is echoed in the description, and cut out of the audit record.
    expect(audit.some((r) => r.reason === 'invalid_scope' && r.detail.includes('[redacted token]'))).toBe(true);
    expect(used.size).toBeGreaterThan(25);
  });

  it('no log line holds a JWT, private key material, or any token or secret used', () => {
    for (const line of suite.svc.logs) {
      expect(line).not.toMatch(JWT_SHAPED);
      expect(line).not.toMatch(PRIVATE_KEY);
      for (const secret of used) expect(line.includes(secret), `a log line holds a token or secret: ${line.slice(0, 200)}`).toBe(false);
    }
  });

  it('no audit record holds a JWT, private key material, or any token or secret used', async () => {
    for (const row of await suite.svc.service.storage.listAudit({ limit: 1000 })) {
      const text = JSON.stringify(row);
      expect(text).not.toMatch(JWT_SHAPED);
      expect(text).not.toMatch(PRIVATE_KEY);
      for (const secret of used) expect(text.includes(secret), `an audit record holds a token or secret: ${text.slice(0, 300)}`).toBe(false);
    }
  });
});
