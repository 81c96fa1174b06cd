/**
 * The fork-PR invariant, attacked. Only push, workflow_dispatch, schedule, release and merge_group can ever receive
 * production. Every other event — and look-alikes of the trusted ones — with every environment and ref gets a preview
 * at most, even against policies crafted to try: rule orders meant to let an untrusted event fall through to a
 * production rule, production rules with catch-all conditions, and production rules for untrusted events or with an
 * event_name glob, which must not even load.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyLoadError } from '../../exchange-service/policy/types.js';
import { claimsOf } from '../helpers/forge.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, startService, tempDir } from '../helpers/service.js';
import { expectGranted, expectRefused, NO_RATE_LIMITS, policyDir, startSuite, type Suite } from './support.js';

const TRUSTED_LIST = '[push, workflow_dispatch, schedule, release, merge_group]';

/** Preview listed first for one untrusted event, then a production rule for every trusted event with no other condition. */
const PREVIEW_FIRST = `site: alpha
repository: acme/alpha
repository_id: "3001"
rules:
  - name: previews
    context: preview
    permissions: [deployments:write]
    when:
      event_name: pull_request_target
  - name: production
    context: production
    permissions: [deployments:write]
    when:
      event_name: ${TRUSTED_LIST}
`;

/** Production first with catch-all globs for ref and environment, then a preview rule that admits anything. */
const PRODUCTION_FIRST = `site: beta
repository: acme/beta
repository_id: "3002"
rules:
  - name: production
    context: production
    permissions: [deployments:write]
    when:
      event_name: ${TRUSTED_LIST}
      ref: "**"
      environment: "**"
  - name: anything
    context: preview
    permissions: [deployments:write]
    when: {}
`;

/** An org file whose production rule is as wide as the loader allows. */
const ORG = `org: acme
sites: ["gamma-*"]
repository: acme/gamma
repository_id: "3003"
rules:
  - name: production
    context: production
    permissions: [deployments:write]
    when:
      event_name: ${TRUSTED_LIST}
  - name: previews
    context: preview
    permissions: [deployments:write]
    when:
      ref: "**"
`;

const SITES = [
  { site: 'alpha', repository: 'acme/alpha', repository_id: '3001' },
  { site: 'beta', repository: 'acme/beta', repository_id: '3002' },
  { site: 'gamma-web', repository: 'acme/gamma', repository_id: '3003' },
];

const UNTRUSTED_EVENTS = [
  'pull_request',
  'pull_request_target',
  'workflow_run',
  'issue_comment',
  'pull_request_review',
  'pull_request_review_comment',
  'discussion',
  'discussion_comment',
  'repository_dispatch',
  'deployment',
  'check_suite',
  'some_future_event',
  // look-alikes of trusted events
  'Push',
  'PUSH',
  'push ',
  ' push',
  'push\u0000',
  '\u0440ush',
  'workflow_dispatch_evil',
  'schedule\n',
];
const ENVIRONMENTS = ['production', 'Production', 'github-pages', undefined];
const REFS = ['refs/heads/main', 'refs/pull/1/merge', 'refs/tags/v1.0.0', 'refs/heads/gh-readonly-queue/main/pr-1-abc'];

let suite: Suite;
let policies: string;

beforeAll(async () => {
  policies = policyDir({ 'alpha.yml': PREVIEW_FIRST, 'beta.yml': PRODUCTION_FIRST, 'gamma.yml': ORG });
  suite = await startSuite({ policies });
});
afterAll(async () => {
  await suite?.stop();
  rmSync(policies, { recursive: true, force: true });
});

describe('the crafted policies do grant production to trusted events (controls)', () => {
  for (const { site, repository, repository_id } of SITES) {
    it(`${site}: push gets production`, async () => {
      const { answer } = await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token({ repository, repository_id }), site));
      expect(answer.body.context).toBe('production');
    });
  }
});

describe('every untrusted event, with every environment and ref, never gets production', () => {
  for (const { site, repository, repository_id } of SITES) {
    it(`${site}: ${UNTRUSTED_EVENTS.length} events × ${ENVIRONMENTS.length} environments × ${REFS.length} refs`, async () => {
      const cases = UNTRUSTED_EVENTS.flatMap((event_name) => ENVIRONMENTS.flatMap((environment) => REFS.map((ref) => ({ event_name, environment, ref }))));
      const results = await Promise.all(
        cases.map(async (claims) => {
          const token = await suite.issuer.token({ ...claims, repository, repository_id });
          return { claims, jti: claimsOf(token).jti as string, answer: await exchangeToken(suite.svc.url, token, site) };
        }),
      );
      const audit = new Map((await suite.svc.service.storage.listAudit({ site, limit: 10_000 })).map((r) => [r.subjectJti, r]));
      let previews = 0;
      for (const { claims, jti, answer } of results) {
        const what = `${JSON.stringify(claims)} → ${JSON.stringify(answer.body)}`;
        const record = audit.get(jti);
        expect(record, what).toBeDefined();
        expect(record!.context, what).not.toBe('production');
        if (answer.status === 200) {
          previews++;
          expect(answer.body.context, what).toBe('preview');
          expect(claimsOf(String(answer.body.access_token)).context, what).toBe('preview');
          expect(record).toMatchObject({ result: 'granted', context: 'preview' });
        } else {
          expect(answer.status, what).toBe(400);
          expect(answer.body.error, what).toBe('invalid_target');
          expect(answer.body, what).not.toHaveProperty('access_token');
          expect(record).toMatchObject({ result: 'denied', tokenJti: null });
        }
      }
      // alpha admits pull_request_target as a preview; beta and gamma admit every event as a preview.
      expect(previews).toBe(site === 'alpha' ? ENVIRONMENTS.length * REFS.length : cases.length);
    });
  }

  it('an untrusted event that only a production rule could match is refused, naming the invariant', async () => {
    const { answer } = await expectRefused(
      suite.svc,
      async () => exchangeToken(suite.svc.url, await suite.issuer.token({ repository: 'acme/alpha', repository_id: '3001', event_name: 'workflow_run' }), 'alpha'),
      { status: 400, error: 'invalid_target', reason: 'no_rule_matched' },
    );
    expect(String(answer.body.error_description)).toMatch(/rule "production": event_name "workflow_run" is not a trusted event/);
  });

  it('asking for production explicitly changes nothing: there is no such request parameter', async () => {
    const token = await suite.issuer.token({ repository: 'acme/beta', repository_id: '3002', event_name: 'pull_request_target' });
    const res = await exchangeToken(suite.svc.url, token, 'beta', { context: 'production', rule: 'production' } as Record<string, string>);
    expect(res.status).toBe(200);
    expect(res.body.context).toBe('preview');
  });
});

describe('policies that try to grant production to untrusted events do not load', () => {
  let issuer: TestIssuer;
  beforeAll(async () => {
    issuer = await startIssuer();
  });
  afterAll(async () => {
    await issuer?.close();
  });

  const production = (when: string) => `site: evil
repository: acme/evil
repository_id: "4001"
rules:
  - name: preview-first
    context: preview
    permissions: [deployments:write]
    when:
      event_name: pull_request
  - name: production
    context: production
    permissions: [deployments:write]
    when:
${when}
`;
  const cases: [string, string, RegExp][] = [
    ['an event_name glob *', '      event_name: "*"', /glob that could match untrusted events/],
    ['an event_name glob **', '      event_name: "**"', /glob that could match untrusted events/],
    ['an event_name glob pu*', '      event_name: "pu*"', /glob/],
    ['pull_request_target among trusted events', '      event_name: [push, pull_request_target]', /may not match event "pull_request_target"/],
    ['workflow_run', '      event_name: workflow_run', /may not match event "workflow_run"/],
    ['a case variant of push', '      event_name: Push', /may not match event "Push"/],
    ['no event_name condition', '      ref: refs/heads/main', /needs an event_name condition/],
    ['an empty when', '      {}', /needs an event_name condition/],
  ];
  for (const [name, when, message] of cases) {
    it(`refuses to start with a production rule for ${name}, saying where and why`, async () => {
      const dir = policyDir({ 'evil.yml': production(when) });
      const dataDir = tempDir();
      try {
        const error = await startService({ issuer: issuer.url, policies: dir, dataDir, env: NO_RATE_LIMITS }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(PolicyLoadError);
        expect((error as Error).message).toMatch(/evil\.yml:\d+:\d+: /);
        expect((error as Error).message).toMatch(message);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }

  it('refuses the same in an org file', async () => {
    const dir = policyDir({
      'org.yml': `org: acme\nsites: ["x-*"]\nrepository: acme/x\nrepository_id: "5"\nrules:\n  - name: p\n    context: production\n    permissions: [deployments:write]\n    when:\n      event_name: [schedule, workflow_run]\n`,
    });
    const dataDir = tempDir();
    try {
      await expect(startService({ issuer: issuer.url, policies: dir, dataDir, env: NO_RATE_LIMITS })).rejects.toThrow(/org\.yml:\d+:\d+: .*workflow_run/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps the previous policies in force when a reload brings such a rule', async () => {
    const dir = policyDir({ 'beta.yml': PRODUCTION_FIRST });
    const svc = await startService({ issuer: issuer.url, policies: dir, env: NO_RATE_LIMITS });
    try {
      writeFileSync(join(dir, 'beta.yml'), PRODUCTION_FIRST.replace(TRUSTED_LIST, '[push, pull_request_target]'));
      const reload = await svc.service.reloadPolicies();
      expect(reload.ok).toBe(false);
      const res = await exchangeToken(svc.url, await issuer.token({ repository: 'acme/beta', repository_id: '3002', event_name: 'pull_request_target' }), 'beta');
      expect(res.status).toBe(200);
      expect(res.body.context).toBe('preview');
    } finally {
      await svc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
