/**
 * docs/troubleshooting.md is keyed by the error text a refusal carries: every denial reason of the service's closed
 * set has exactly one entry, and the texts it documents are the ones the real service answers with — checked by
 * provoking each refusal that can be provoked from outside at a running service.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DENIAL_REASONS } from '../exchange-service/denial.js';
import { startIssuer, type TestIssuer } from './helpers/issuer.js';
import { ROOT, TOKEN_EXCHANGE, exchangeToken, postForm, startService, type TestService } from './helpers/service.js';

const page = readFileSync(join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');
const OAUTH_ERRORS = ['invalid_request', 'invalid_target', 'invalid_scope', 'unsupported_grant_type', 'temporarily_unavailable', 'server_error'];

interface Entry {
  reason: string;
  /** The `error` and description patterns the entry is keyed by. */
  texts: { error: string; pattern: RegExp }[];
}

function entries(): Entry[] {
  return [...page.matchAll(/^### (.+)\n<!-- reason: ([a-z_]+) -->$/gm)].map((m) => {
    const texts: Entry['texts'] = [];
    let error = '';
    for (const [, span] of m[1]!.matchAll(/`([^`]+)`/g)) {
      if (OAUTH_ERRORS.includes(span!)) {
        error = span!;
        continue;
      }
      const pattern = new RegExp(`^${span!.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}`);
      texts.push({ error, pattern });
    }
    return { reason: m[2]!, texts };
  });
}

describe('the troubleshooting page', () => {
  it('has one entry for every denial reason the service can return, and no other', () => {
    const documented = entries().map((e) => e.reason);
    expect([...documented].sort()).toEqual([...DENIAL_REASONS].sort());
    expect(new Set(documented).size).toBe(documented.length);
  });

  it('keys every entry by an OAuth error and at least one text, and gives its meaning and fix', () => {
    for (const entry of entries()) {
      expect(entry.texts.length, entry.reason).toBeGreaterThan(0);
      for (const text of entry.texts) expect(OAUTH_ERRORS, entry.reason).toContain(text.error);
      const body = page.split(`<!-- reason: ${entry.reason} -->`)[1]!.split('\n### ')[0]!;
      expect(body, entry.reason).toContain(`Reason \`${entry.reason}\``);
      expect(body, entry.reason).toContain('**Fix:**');
    }
  });
});

describe('the texts of the troubleshooting page are what the service answers', () => {
  let issuer: TestIssuer;
  let svc: TestService;
  let limited: TestService;
  const seen: { reason: string; error: string; description: string }[] = [];

  beforeAll(async () => {
    issuer = await startIssuer();
    svc = await startService({ issuer: issuer.url });
    limited = await startService({ issuer: issuer.url, env: { DEPLOY_STS_RATE_LIMIT_REPOSITORY: '1' } });
  });
  afterAll(async () => {
    await svc?.stop();
    await limited?.stop();
    await issuer?.close();
  });

  async function refused(reason: string, answer: Promise<{ status: number; body: Record<string, unknown> }> | Promise<Response>): Promise<void> {
    const got = await answer;
    const body = got instanceof Response ? ((await got.json()) as Record<string, unknown>) : got.body;
    seen.push({ reason, error: String(body.error), description: String(body.error_description) });
  }

  it('for every refusal a client can provoke', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.token();
    await exchangeToken(svc.url, token);
    await refused('replay', exchangeToken(svc.url, token));
    await refused('no_rule_matched', exchangeToken(svc.url, await issuer.token({ ref: 'refs/heads/feature' })));
    await refused('unknown_site', exchangeToken(svc.url, await issuer.token(), 'nowhere'));
    await refused('repository_mismatch', exchangeToken(svc.url, await issuer.token({ repository: 'evil/docs', repository_id: '1' })));
    await refused('invalid_scope', exchangeToken(svc.url, await issuer.token(), 'docs', { scope: 'sites:read' }));
    await refused('bad_audience', exchangeToken(svc.url, await issuer.token({ aud: 'https://github.com/acme' })));
    await refused('untrusted_issuer', exchangeToken(svc.url, await issuer.token({ iss: 'https://issuer.example.com' })));
    await refused('bad_signature', exchangeToken(svc.url, await issuer.token({}, { foreignKey: true })));
    await refused('unknown_kid', exchangeToken(svc.url, await issuer.token({}, { kid: 'no-such-kid' })));
    // A real token with another header (the algorithm and crit are checked before the signature).
    const withHeader = async (header: Record<string, unknown>) => {
      const [, payload, signature] = (await issuer.token()).split('.');
      return `${Buffer.from(JSON.stringify({ typ: 'JWT', kid: issuer.kid, ...header })).toString('base64url')}.${payload}.${signature}`;
    };
    await refused('bad_algorithm', exchangeToken(svc.url, await withHeader({ alg: 'HS256' })));
    await refused('unsupported_header', exchangeToken(svc.url, await withHeader({ alg: 'RS256', crit: ['exp'], exp: 1 })));
    await refused('malformed', exchangeToken(svc.url, 'not-a-jwt'));
    await refused('oversized', exchangeToken(svc.url, 'x'.repeat(17_000)));
    await refused('bad_claims', exchangeToken(svc.url, await issuer.token({ repository_id: 'abc' })));
    await refused('bad_iat', exchangeToken(svc.url, await issuer.token({ iat: now + 3600, nbf: now - 5, exp: now + 300 })));
    await refused('not_yet_valid', exchangeToken(svc.url, await issuer.token({ iat: now, nbf: now + 3600, exp: now + 7200 })));
    await refused('expired', exchangeToken(svc.url, await issuer.token({ iat: now - 4000, nbf: now - 4000, exp: now - 3600 })));
    await refused('too_old', exchangeToken(svc.url, await issuer.token({ iat: now - 700, nbf: now - 700, exp: now + 300 })));
    await refused('malformed_request', postForm(`${svc.url}/token`, { ...TOKEN_EXCHANGE, resource: 'site:docs' }));
    await refused('malformed_request', exchangeToken(svc.url, await issuer.token(), 'Not A Slug'));
    await refused('duplicate_parameter', postForm(`${svc.url}/token`, { ...TOKEN_EXCHANGE, subject_token: ['a', 'b'], resource: 'site:docs' }));
    await refused('unsupported_grant_type', postForm(`${svc.url}/token`, { grant_type: 'password' }));
    await refused('bad_content_type', fetch(`${svc.url}/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }));
    await refused('malformed_body', fetch(`${svc.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }));
    await refused('too_large', postForm(`${svc.url}/token`, { x: 'a'.repeat(40_000) }));
    await refused('too_many_parameters', postForm(`${svc.url}/token`, Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`p${i}`, 'x']))));
    await refused('method_not_allowed', fetch(`${svc.url}/token`));
    await exchangeToken(limited.url, await issuer.token());
    await refused('rate_limited', exchangeToken(limited.url, await issuer.token()));

    const byReason = new Map(entries().map((e) => [e.reason, e]));
    for (const { reason, error, description } of seen) {
      const entry = byReason.get(reason)!;
      expect(
        entry.texts.some((t) => t.error === error && t.pattern.test(description)),
        `${reason}: the service answered ${error} "${description}", which the page's entry (${entry.texts.map((t) => `${t.error} ${t.pattern.source}`).join(' | ')}) does not match`,
      ).toBe(true);
    }
    const audited = new Set([...(await svc.service.storage.listAudit({ limit: 1000 })), ...(await limited.service.storage.listAudit({ limit: 1000 }))].map((r) => r.reason));
    for (const reason of new Set(seen.map((s) => s.reason))) {
      if (!['bad_content_type', 'malformed_body', 'too_large', 'too_many_parameters', 'method_not_allowed'].includes(reason)) expect(audited, reason).toContain(reason);
    }
  });
});
