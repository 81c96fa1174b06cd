import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { docsSite, previewRule, productionRule, toYaml } from '../policy/fixtures.js';
import { exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';

const policy = (previewEvents: string[]) =>
  toYaml(
    docsSite({
      org: undefined,
      repository_owner_id: undefined,
      rules: [
        productionRule({ when: { event_name: 'push', ref: 'refs/heads/main' } }),
        previewRule({ when: { event_name: previewEvents } }),
      ],
    }),
  );

let issuer: TestIssuer;
let svc: TestService;
const policies = tempDir('deploy-sts-policies-');

beforeAll(async () => {
  issuer = await startIssuer();
  writeFileSync(join(policies, 'docs.yml'), policy(['pull_request_target']));
  svc = await startService({ issuer: issuer.url, policies });
});
afterAll(async () => {
  await svc.stop();
  await issuer.close();
});

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('metrics', () => {
  it('counts exchanges by result, site and rule, and denials by reason', async () => {
    await exchangeToken(svc.url, await issuer.token());
    await exchangeToken(svc.url, await issuer.token({ ref: 'refs/heads/dev' }));
    await exchangeToken(svc.url, await issuer.token(), 'attacker-chosen-site');
    const text = await (await fetch(svc.service.metricsUrl!)).text();
    expect(text).toMatch(/deploy_sts_exchanges_total\{result="granted",site="docs",rule="production"\} [1-9]/);
    expect(text).toMatch(/deploy_sts_denials_total\{reason="no_rule_matched"\} [1-9]/);
    expect(text).toMatch(/deploy_sts_denials_total\{reason="unknown_site"\} [1-9]/);
    expect(text).not.toContain('attacker-chosen-site');
    expect(text).toMatch(/deploy_sts_token_request_duration_seconds_bucket/);
    expect(text).toMatch(/deploy_sts_jwks_fetches_total\{issuer="http:\/\/127\.0\.0\.1:\d+"\} 1/);
  });
});

describe('logs', () => {
  it('write one JSON line per request with its request id and decision, never the token', async () => {
    const subject = await issuer.token();
    const res = await fetch(`${svc.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'req-12345' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        resource: 'site:docs',
        subject_token: subject,
      }),
    });
    const body = (await res.json()) as { access_token: string };
    expect(res.headers.get('x-request-id')).toBe('req-12345');
    const lines = svc.logs.filter((l) => l.includes('"request_id":"req-12345"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request', method: 'POST', path: '/token', status: 200, result: 'granted', rule: 'production', site: 'docs' });
    for (const line of svc.logs) {
      expect(line).not.toContain(subject);
      expect(line).not.toContain(body.access_token);
    }
  });

  it('replace a request id that is not a safe token', async () => {
    for (const bad of ['a b', 'x'.repeat(65), '<script>']) {
      const res = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('policy reloads', () => {
  it('apply a valid change atomically, and keep the old set in force when the new one is broken', async () => {
    expect((await exchangeToken(svc.url, await issuer.token({ event_name: 'workflow_run' }))).status).toBe(400);

    writeFileSync(join(policies, 'docs.yml'), policy(['pull_request_target', 'workflow_run']));
    const ok = await svc.service.reloadPolicies();
    expect(ok.ok).toBe(true);
    expect((await exchangeToken(svc.url, await issuer.token({ event_name: 'workflow_run' }))).body.context).toBe('preview');

    writeFileSync(join(policies, 'docs.yml'), policy(['pull_request_target']).replace('context: preview', 'contxt: preview'));
    const failed = await svc.service.reloadPolicies();
    expect(failed.ok).toBe(false);
    // Still the previous (valid) set.
    expect((await exchangeToken(svc.url, await issuer.token({ event_name: 'workflow_run' }))).body.context).toBe('preview');
    expect(svc.logs.some((l) => l.includes('policy_reload_failed') && /docs\.yml:\d+:\d+/.test(l))).toBe(true);
    const text = await (await fetch(svc.service.metricsUrl!)).text();
    expect(text).toMatch(/deploy_sts_policy_reloads_total\{result="failed"\} [1-9]/);
  });

  it('follow a change of the policies directory without a signal', async () => {
    writeFileSync(join(policies, 'docs.yml'), policy(['pull_request_target']));
    await until(async () => (await exchangeToken(svc.url, await issuer.token({ event_name: 'workflow_run' }))).status === 400, 'the watched reload');
  });
});
