/**
 * Denial reasons are a public contract: the audit log, the logs, the `reason` label of deploy_sts_denials_total and the
 * docs name them. The closed list in exchange-service/denial.ts, the table in docs/http-api.md and the metric table in
 * docs/operating.md agree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { DENIAL_REASONS } from '../exchange-service/denial.js';
import { ROOT, exchangeToken, postForm, useIssuerAndService } from './helpers/service.js';

const httpApi = readFileSync(join(ROOT, 'docs', 'http-api.md'), 'utf8');
const operating = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');

describe('denial reasons', () => {
  it('are listed in docs/http-api.md, each once, exactly as the service knows them', () => {
    const table = /<!-- denial-reasons -->\n([\s\S]*?)\n\n/.exec(httpApi)![1]!;
    const documented = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual([...DENIAL_REASONS]);
  });

  it('named in the docs/operating.md metric table are real reasons', () => {
    const row = operating.split('\n').find((line) => line.startsWith('| `deploy_sts_denials_total`'))!;
    const named = [...row.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).filter((n) => n !== 'deploy_sts_denials_total' && n !== 'reason');
    expect(named.length).toBeGreaterThan(3);
    for (const reason of named) expect(DENIAL_REASONS).toContain(reason);
  });

  describe('at the service', () => {
    const running = useIssuerAndService();

    it('label the denials metric only with reasons of the closed set, for refusals in and before the exchange', async () => {
      const token = await running.issuer.token();
      await exchangeToken(running.svc.url, token);
      await exchangeToken(running.svc.url, token); // replay
      await exchangeToken(running.svc.url, await running.issuer.token({ ref: 'refs/heads/feature' })); // no_rule_matched
      await exchangeToken(running.svc.url, await running.issuer.token(), 'nowhere'); // unknown_site
      await postForm(`${running.svc.url}/token`, { grant_type: 'password' }); // unsupported_grant_type
      await fetch(`${running.svc.url}/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }); // bad_content_type, before the exchange
      await fetch(`${running.svc.url}/token`); // method_not_allowed, before the exchange
      const text = await (await fetch(running.svc.service.metricsUrl!)).text();
      const labelled = [...text.matchAll(/^deploy_sts_denials_total\{reason="([^"]+)"\} \d+/gm)].map((m) => m[1]!);
      expect(labelled.sort()).toEqual(['bad_content_type', 'method_not_allowed', 'no_rule_matched', 'replay', 'unknown_site', 'unsupported_grant_type']);
      for (const reason of labelled) expect(DENIAL_REASONS).toContain(reason);
      const audited = (await running.svc.service.storage.listAudit({})).filter((r) => r.result === 'denied').map((r) => r.reason);
      expect(new Set(audited)).toEqual(new Set(labelled));
    });

    it('audit_unavailable tells the caller no token was issued, and the operator why the storage failed, once for a run of failures', async () => {
      // Another connection holds the database's write lock past the service's busy timeout (5 s).
      const other = new DatabaseSync(join(running.svc.dataDir, 'deploy-sts.sqlite'));
      other.exec('BEGIN EXCLUSIVE');
      let answer: Awaited<ReturnType<typeof exchangeToken>>;
      try {
        answer = await exchangeToken(running.svc.url, await running.issuer.token());
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      expect(answer.status).toBe(503);
      const body = answer.body;
      expect(body).toMatchObject({ error: 'temporarily_unavailable', error_description: expect.stringMatching(/^the audit log is unavailable; no token was issued/) });
      expect(body).not.toHaveProperty('access_token');
      const logged = () =>
        running.svc.logs
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .filter((l) => l.msg === 'the audit log could not be written; no token was issued');
      expect(logged()).toHaveLength(1);
      expect(logged()[0]).toMatchObject({ level: 50, error: expect.stringMatching(/database is locked/) });

      // A storage that has stopped (closed here) fails every request: the log does not repeat it for each of them.
      await running.svc.service.storage.close();
      const refused = await Promise.all([
        exchangeToken(running.svc.url, await running.issuer.token()),
        exchangeToken(running.svc.url, await running.issuer.token()),
        postForm(`${running.svc.url}/token`, { grant_type: 'password' }), // refused before the exchange, audited all the same
      ]);
      expect(refused.map((r) => [r.status, r.body.error])).toEqual([
        [503, 'temporarily_unavailable'],
        [503, 'temporarily_unavailable'],
        [503, 'temporarily_unavailable'],
      ]);
      expect(logged()).toHaveLength(1);
    }, 20_000);
  });
});
