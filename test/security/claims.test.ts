/**
 * Claim type confusion and replay. The tokens are genuinely signed by the trusted issuer: what is hostile is the
 * shape of a claim (a number, array or object where GitHub sends a string), a look-alike value (Cyrillic letters,
 * Unicode case folding, invisible characters, a different case where the comparison is case-sensitive), or a jti
 * used twice — at once or one after the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf } from '../helpers/forge.js';
import { exchangeToken } from '../helpers/service.js';
import { auditAfter, expectGranted, expectRefused, lastAuditId, startSuite, type Suite } from './support.js';

let suite: Suite;

beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

const exchange = (claims: Record<string, unknown>, site = 'docs') => async () => exchangeToken(suite.svc.url, await suite.issuer.token(claims), site);

describe('a claim of the wrong JSON type is refused before the policy is consulted', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['repository_id as a number', { repository_id: 892043217 }],
    ['repository_id as an array', { repository_id: ['892043217'] }],
    ['repository_id with a trailing space', { repository_id: '892043217 ' }],
    ['repository_owner_id as a number', { repository_owner_id: 51204 }],
    ['repository as an array', { repository: ['acme/docs'] }],
    ['repository as an object', { repository: { toString: 'acme/docs' } }],
    ['event_name as an array', { event_name: ['push'] }],
    ['event_name as a number', { event_name: 1 }],
    ['event_name empty', { event_name: '' }],
    ['ref as null', { ref: null }],
    ['ref as an object', { ref: { name: 'refs/heads/main' } }],
    ['environment as an array', { environment: ['production'] }],
    ['environment as a boolean', { environment: true }],
    ['job_workflow_ref as an object', { job_workflow_ref: {} }],
    ['runner_environment as a number', { runner_environment: 0 }],
    ['a custom property as a number', { repo_property_tier: 1 }],
    ['a custom property as an array', { repo_property_tier: ['gold'] }],
    ['jti as a number', { jti: 12345 }],
    ['sub as an array', { sub: ['repo:acme/docs:ref:refs/heads/main'] }],
    ['a claim longer than any GitHub sends', { ref: `refs/heads/${'m'.repeat(2000)}` }],
  ];
  for (const [name, claims] of cases) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange(claims), { status: 400, error: 'invalid_request', reason: 'bad_claims', description: /claim .* is invalid/ });
    });
  }
});

describe('look-alike values never match', () => {
  const notBound: [string, Record<string, unknown>][] = [
    ['a Cyrillic "а" in the owner (аcme/docs)', { repository: '\u0430cme/docs' }],
    ['a Cyrillic "о" in the name (acme/dоcs)', { repository: 'acme/d\u043ecs' }],
    ['a long s, which upper-cases to S (acme/doc\u017f)', { repository: 'acme/doc\u017f' }],
    ['a zero-width space (acme/\u200bdocs)', { repository: 'acme/\u200bdocs' }],
    ['full-width letters', { repository: '\uff41cme/docs' }],
    ['a trailing space', { repository: 'acme/docs ' }],
    ['a leading zero in the repository id', { repository_id: '0892043217' }],
    ['a leading zero in the owner id', { repository_owner_id: '051204' }],
  ];
  for (const [name, claims] of notBound) {
    it(`does not bind the site's repository: ${name}`, async () => {
      const { answer } = await expectRefused(suite.svc, exchange(claims), { status: 400, error: 'invalid_target', reason: 'repository_mismatch' });
      expect(String(answer.body.error_description)).toMatch(/may not deploy site "docs"/);
    });
  }

  const noRule: [string, Record<string, unknown>][] = [
    ['a Cyrillic "р" in push', { event_name: '\u0440ush' }],
    ['a dotless ı in production, which upper-cases to I', { environment: 'product\u0131on' }],
    ['a Cyrillic "о" in production', { environment: 'pr\u043eduction' }],
    ['a Ukrainian "і" in main', { ref: 'refs/heads/ma\u0456n' }],
    ['a NUL after main', { ref: 'refs/heads/main\u0000' }],
    ['a newline after push', { event_name: 'push\n' }],
    ['a Cyrillic "а" in the workflow\'s owner', { job_workflow_ref: '\u0430cme/docs/.github/workflows/deploy.yml@refs/heads/main' }],
    ['a Kelvin sign in the workflow path', { job_workflow_ref: 'acme/docs/.github/wor\u212Aflows/deploy.yml@refs/heads/main' }],
  ];
  for (const [name, claims] of noRule) {
    it(`matches no rule: ${name}`, async () => {
      await expectRefused(suite.svc, exchange(claims), { status: 400, error: 'invalid_target', reason: 'no_rule_matched' });
    });
  }
});

describe('case: sensitive where GitHub is, insensitive only where the spec says', () => {
  const sensitive: [string, Record<string, unknown>][] = [
    ['ref refs/heads/Main', { ref: 'refs/heads/Main' }],
    ['ref Refs/Heads/main', { ref: 'Refs/Heads/main' }],
    ['event_name PUSH', { event_name: 'PUSH' }],
    ['event_name Push', { event_name: 'Push' }],
    ['the workflow path Deploy.yml', { job_workflow_ref: 'acme/docs/.github/workflows/Deploy.yml@refs/heads/main' }],
    ['the workflow ref @refs/heads/MAIN', { job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/MAIN' }],
  ];
  for (const [name, claims] of sensitive) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange(claims), { status: 400, error: 'invalid_target', reason: 'no_rule_matched' });
    });
  }

  const insensitive: [string, Record<string, unknown>][] = [
    ['the repository name ACME/Docs', { repository: 'ACME/Docs' }],
    ['the environment PRODUCTION', { environment: 'PRODUCTION' }],
    ['the workflow\'s owner/repo Acme/DOCS', { job_workflow_ref: 'Acme/DOCS/.github/workflows/deploy.yml@refs/heads/main' }],
  ];
  for (const [name, claims] of insensitive) {
    it(`grants ${name} (names compare as GitHub compares them)`, async () => {
      const { answer } = await expectGranted(suite.svc, exchange(claims));
      expect(answer.body.context).toBe('production');
    });
  }
});

describe('replay of a jti', () => {
  it('two concurrent requests with one token: exactly one wins', async () => {
    const token = await suite.issuer.token();
    const jti = claimsOf(token).jti;
    const before = await lastAuditId(suite.svc);
    const answers = await Promise.all([exchangeToken(suite.svc.url, token), exchangeToken(suite.svc.url, token)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    const loser = answers.find((a) => a.status === 400)!;
    expect(loser.body.error).toBe('invalid_request');
    expect(loser.body).not.toHaveProperty('access_token');
    const rows = (await auditAfter(suite.svc, before)).filter((r) => r.subjectJti === jti);
    expect(rows.map((r) => r.reason).sort()).toEqual(['granted', 'replay']);
  });

  it('twenty concurrent requests with one token: exactly one wins', async () => {
    const token = await suite.issuer.token();
    const before = await lastAuditId(suite.svc);
    const answers = await Promise.all(Array.from({ length: 20 }, () => exchangeToken(suite.svc.url, token)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 400 && a.body.error === 'invalid_request' && !('access_token' in a.body))).toHaveLength(19);
    const rows = await auditAfter(suite.svc, before);
    expect(rows.filter((r) => r.result === 'granted')).toHaveLength(1);
    expect(rows.filter((r) => r.reason === 'replay')).toHaveLength(19);
  });

  it('a different token carrying a spent jti is a replay', async () => {
    const first = await suite.issuer.token();
    const jti = claimsOf(first).jti as string;
    await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, first));
    await expectRefused(suite.svc, exchange({ jti, event_name: 'workflow_dispatch' }), { status: 400, error: 'invalid_request', reason: 'replay', description: /already exchanged/ });
  });

  it('a token spent on a denied request cannot be tried again elsewhere', async () => {
    const token = await suite.issuer.token();
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, token, 'some-other-site'), { status: 400, error: 'invalid_target', reason: 'unknown_site' });
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, token, 'docs'), { status: 400, error: 'invalid_request', reason: 'replay' });
  });

  it('a token spent on an invalid scope cannot be retried with a narrower one', async () => {
    const token = await suite.issuer.token();
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, token, 'docs', { scope: 'sites:read' }), { status: 400, error: 'invalid_scope' });
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, token, 'docs', { scope: 'deployments:read' }), { status: 400, error: 'invalid_request', reason: 'replay' });
  });
});
