/**
 * One exchange in this process, through `exchange()` with the real modules and no HTTP: the test issuer's RS256
 * tokens verified against its JWK set, the example policies, SQLite in a temp dir, a file key ring. What it answers
 * and what it writes to the audit log are checked together: the outcome's record is the row that was stored.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAccessToken } from '../exchange-service/access-token/verify.js';
import { exchange, type ExchangeDeps } from '../exchange-service/exchange.js';
import { fileKeyStore } from '../exchange-service/keys/file-key-store.js';
import { KeyRing } from '../exchange-service/keys/key-ring.js';
import { jwksKeySource } from '../exchange-service/oidc/jwks.js';
import { verifyGitHubToken } from '../exchange-service/oidc/verify-oidc.js';
import { loadPolicyDir } from '../exchange-service/policy/load.js';
import { openSqlite } from '../exchange-service/storage/sqlite.js';
import type { Storage } from '../exchange-service/storage/types.js';
import { ACCESS_TOKEN_TYPE, GRANT_TYPE, ID_TOKEN_TYPE } from '../shared/wire.js';
import { DEFAULT_AUDIENCE, startIssuer, type TestIssuer } from './helpers/issuer.js';
import { examplePolicies, tempDir } from './helpers/service.js';

const ISSUER = 'https://sts.exchange.test';
let issuer: TestIssuer;
let storage: Storage;
let deps: ExchangeDeps;
const dir = tempDir('deploy-sts-exchange-');

beforeAll(async () => {
  issuer = await startIssuer();
  storage = openSqlite(dir, { synchronous: 'FULL' });
  // The example policies, bound to the test issuer (they name GitHub's).
  const policies = await loadPolicyDir(examplePolicies(issuer.url, `${dir}/policies`), { issuers: [issuer.url] });
  const source = jwksKeySource(issuer.url, issuer.publicJwks());
  deps = {
    verify: (token) => verifyGitHubToken(token, { issuers: new Map([[issuer.url, source]]), audience: DEFAULT_AUDIENCE }),
    policies: () => policies,
    storage,
    keys: await KeyRing.open(fileKeyStore(dir)),
    issuer: ISSUER,
    tokenAudience: 'deploy-api',
    now: () => Math.floor(Date.now() / 1000),
  };
});
afterAll(async () => {
  await storage.close().catch(() => undefined);
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
});

const request = (subjectToken: string, site = 'docs', extra: Record<string, string> = {}) => ({
  grant_type: GRANT_TYPE,
  subject_token_type: ID_TOKEN_TYPE,
  subject_token: subjectToken,
  resource: `site:${site}`,
  ...extra,
});

/** The newest audit row. */
async function lastRow() {
  const [row] = await storage.listAudit({ limit: 1 });
  const { id: _id, ...record } = row!;
  return record;
}

describe('exchange()', () => {
  it('grants a push to main of acme/docs production, with a token that verifies, and stores exactly the record it returns', async () => {
    const outcome = await exchange(request(await issuer.token()), deps, '127.0.0.9');
    if (!outcome.granted) throw new Error(`denied: ${outcome.error.description}`);
    expect(outcome.response).toMatchObject({ issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', site: 'docs', context: 'production' });
    expect(await lastRow()).toEqual(outcome.audit);
    expect(outcome.audit).toMatchObject({ result: 'granted', reason: 'granted', site: 'docs', repository: 'acme/docs', eventName: 'push', clientIp: '127.0.0.9' });
    const claims = await verifyAccessToken(outcome.response.access_token, deps.keys, ISSUER);
    expect(claims).toMatchObject({ sub: 'site:docs', aud: 'deploy-api', jti: outcome.audit.tokenJti, scope: outcome.response.scope, context: 'production' });
    expect(claims!.act).toMatchObject({ repository: 'acme/docs', repository_id: '892043217', event_name: 'push', sub: 'repo:acme/docs' });
    expect(claims!.exp - claims!.iat).toBe(outcome.response.expires_in);
  });

  it('refuses a replayed subject token, recording who tried and no token', async () => {
    const token = await issuer.token();
    expect((await exchange(request(token), deps, null)).granted).toBe(true);
    const replay = await exchange(request(token), deps, null);
    if (replay.granted) throw new Error('a replay was granted');
    expect(replay.error).toMatchObject({ code: 'invalid_request', reason: 'replay', status: 400 });
    expect(await lastRow()).toEqual(replay.audit);
    expect(replay.audit).toMatchObject({ result: 'denied', reason: 'replay', repository: 'acme/docs', tokenJti: null, scope: null, expiresAt: null, rule: null });
  });

  it('refuses a malformed request before reading any token, recording only the time and the address', async () => {
    const outcome = await exchange({ grant_type: 'password' }, deps, '127.0.0.3');
    if (outcome.granted) throw new Error('granted');
    expect(outcome.error).toMatchObject({ code: 'unsupported_grant_type', reason: 'unsupported_grant_type' });
    expect(await lastRow()).toEqual(outcome.audit);
    expect(outcome.audit).toMatchObject({ site: null, repository: null, subjectJti: null, clientIp: '127.0.0.3' });
  });

  it('records the verified claims of a token its policy refuses, and the rule of a scope it refuses', async () => {
    const denied = await exchange(request(await issuer.token({ ref: 'refs/heads/feature' })), deps, null);
    expect(denied.granted).toBe(false);
    expect(denied.audit).toMatchObject({ reason: 'no_rule_matched', site: 'docs', ref: 'refs/heads/feature', rule: null });

    const tooMuch = await exchange(request(await issuer.token(), 'docs', { scope: 'sites:delete' }), deps, null);
    if (tooMuch.granted) throw new Error('granted');
    expect(tooMuch.error.code).toBe('invalid_scope');
    expect(tooMuch.audit).toMatchObject({ reason: 'invalid_scope', rule: 'production', context: 'production', tokenJti: null });
    expect(await lastRow()).toEqual(tooMuch.audit);
  });

  it('answers 503 with no token when nothing can be recorded', async () => {
    const closedDir = tempDir('deploy-sts-exchange-closed-');
    const closed = openSqlite(closedDir, { synchronous: 'FULL' });
    await closed.close();
    try {
      const outcome = await exchange(request(await issuer.token()), { ...deps, storage: closed }, null);
      if (outcome.granted) throw new Error('granted without an audit log');
      expect(outcome.error).toMatchObject({ code: 'temporarily_unavailable', reason: 'audit_unavailable', status: 503 });
      expect(outcome.audit).toMatchObject({ result: 'denied', reason: 'audit_unavailable', tokenJti: null });
      expect(String(outcome.storageFailure)).toMatch(/storage is closed/);
    } finally {
      rmSync(closedDir, { recursive: true, force: true });
    }
  });
});
