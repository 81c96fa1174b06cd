/**
 * Noisy neighbours: the per-IP limit on /token cannot be dodged by forging X-Forwarded-For. With no trusted proxy
 * the header is ignored; behind one trusted proxy only the hop that proxy appended counts. A refused request is a
 * 429 with Retry-After and no token; the first refusal of an address is audited with that address, and a flood of
 * refusals cannot grow the audit log by more than a row a minute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeToken, postForm, TOKEN_EXCHANGE } from '../helpers/service.js';
import { auditAfter, expectRefused, lastAuditId, NO_RATE_LIMITS, startSuite, type Suite } from './support.js';

const LIMIT = 3;
const limited = { status: 429, error: 'temporarily_unavailable', reason: 'rate_limited' };

async function exchangeFrom(suite: Suite, forwardedFor: string) {
  return postForm(
    `${suite.svc.url}/token`,
    { ...TOKEN_EXCHANGE, subject_token: await suite.issuer.token(), resource: 'site:docs' },
    { 'x-forwarded-for': forwardedFor },
  );
}

describe('without a trusted proxy (DEPLOY_STS_TRUST_PROXY=0)', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ env: { ...NO_RATE_LIMITS, DEPLOY_STS_RATE_LIMIT_IP: String(LIMIT), DEPLOY_STS_TRUST_PROXY: '0' } });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it('ignores X-Forwarded-For: a new forged address per request does not refill the bucket', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await exchangeFrom(suite, `203.0.113.${i}`)).status).toBe(200);
    const { answer, audit } = await expectRefused(suite.svc, () => exchangeFrom(suite, '203.0.113.99'), limited);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(audit.clientIp).toMatch(/127\.0\.0\.1$/);
  });

  it('keeps refusing while the bucket is empty, whatever the request carries, without growing the audit log', async () => {
    const before = await lastAuditId(suite.svc);
    const refusals = [
      await exchangeToken(suite.svc.url, await suite.issuer.token()),
      await postForm(`${suite.svc.url}/token`, { grant_type: 'x' }),
      await postForm(`${suite.svc.url}/introspect`, { token: 'x' }),
      ...(await Promise.all(Array.from({ length: 20 }, () => postForm(`${suite.svc.url}/token`, {})))),
    ];
    for (const res of refusals) {
      expect(res.status).toBe(429);
      expect(res.body.error).toBe('temporarily_unavailable');
      expect(res.body).not.toHaveProperty('access_token');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // The first refusal of this address was audited above; a flood of refusals adds at most one row a minute.
    expect((await auditAfter(suite.svc, before)).length).toBeLessThanOrEqual(1);
  });
});

describe('behind one trusted proxy (DEPLOY_STS_TRUST_PROXY=1)', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ env: { ...NO_RATE_LIMITS, DEPLOY_STS_RATE_LIMIT_IP: String(LIMIT), DEPLOY_STS_TRUST_PROXY: '1' } });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it('limits by the address the proxy appended, not by what the client prepended', async () => {
    // The proxy appends the real client address last; anything before it came from the client.
    for (let i = 0; i < LIMIT; i++) expect((await exchangeFrom(suite, `10.0.0.${i}, 198.51.100.7`)).status).toBe(200);
    const { audit } = await expectRefused(suite.svc, () => exchangeFrom(suite, '10.9.9.9, 198.51.100.7'), limited);
    expect(audit.clientIp).toBe('198.51.100.7');
  });

  it('gives another client its own bucket', async () => {
    expect((await exchangeFrom(suite, '198.51.100.8')).status).toBe(200);
  });

  it('limits by the address, not by the port a proxy may append to it: a new source port per request does not refill the bucket', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await exchangeFrom(suite, `10.0.0.1, 198.51.100.30:${40_000 + i}`)).status).toBe(200);
    const { audit } = await expectRefused(suite.svc, () => exchangeFrom(suite, '198.51.100.30:49999'), limited);
    expect(audit.clientIp).toBe('198.51.100.30');
  });

  it('audits and logs a refusal before the exchange (a body it cannot parse) with the same address as a decision', async () => {
    const send = async () => {
      const response = await fetch(`${suite.svc.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.6.6.6, 198.51.100.9', 'x-request-id': 'refused-before-exchange' },
        body: '{"grant_type":',
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
    };
    const { audit } = await expectRefused(suite.svc, send, { status: 400, error: 'invalid_request', reason: 'malformed_body' });
    expect(audit.clientIp).toBe('198.51.100.9');
    const line = suite.svc.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.request_id === 'refused-before-exchange');
    expect(line).toMatchObject({ msg: 'request', path: '/token', status: 400, client_ip: '198.51.100.9', reason: 'malformed_body' });
  });

  it('skips empty X-Forwarded-For entries instead of taking one for the address', async () => {
    const { audit } = await expectRefused(
      suite.svc,
      () => postForm(`${suite.svc.url}/token`, { ...TOKEN_EXCHANGE, subject_token: 'not-a-jwt', resource: 'site:docs' }, { 'x-forwarded-for': '10.7.7.7, 198.51.100.10, ,' }),
      { status: 400, error: 'invalid_request' },
    );
    expect(audit.clientIp).toBe('198.51.100.10');
  });
});

describe('the per-repository limit (DEPLOY_STS_RATE_LIMIT_REPOSITORY)', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ env: { ...NO_RATE_LIMITS, DEPLOY_STS_RATE_LIMIT_REPOSITORY: String(LIMIT) } });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it('is not spent by replaying an already-used token of the victim repository', async () => {
    // A leaked, already-exchanged GitHub token of acme/docs (from a log, a fork's artifact …), replayed again and again.
    const used = await suite.issuer.token();
    expect((await exchangeToken(suite.svc.url, used)).status).toBe(200);
    for (let i = 0; i < LIMIT * 3; i++) {
      await expectRefused(suite.svc, () => exchangeToken(suite.svc.url, used), { status: 400, error: 'invalid_request', reason: 'replay' });
    }
    // The victim's own runs still get their tokens: the bucket holds LIMIT - 1 more.
    for (let i = 0; i < LIMIT - 1; i++) expect((await exchangeToken(suite.svc.url, await suite.issuer.token())).status).toBe(200);
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token()), limited);
  });
});

describe('IPv6 clients (behind one trusted proxy)', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ env: { ...NO_RATE_LIMITS, DEPLOY_STS_RATE_LIMIT_IP: String(LIMIT), DEPLOY_STS_TRUST_PROXY: '1' } });
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it('are limited by their /64: a fresh address from the same prefix for every request does not refill the bucket', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await exchangeFrom(suite, `2001:db8:1:2::${(i + 1).toString(16)}`)).status).toBe(200);
    const { audit } = await expectRefused(suite.svc, () => exchangeFrom(suite, '2001:db8:1:2:ffff:ffff:ffff:fffe'), limited);
    expect(audit.clientIp).toBe('2001:db8:1:2:ffff:ffff:ffff:fffe');
    // Spelt differently (leading zeros, upper case, no compression), it is the same prefix.
    expect((await exchangeFrom(suite, '2001:0DB8:0001:0002:0:0:0:abcd')).status).toBe(429);
  });

  it('gives another /64 its own bucket', async () => {
    expect((await exchangeFrom(suite, '2001:db8:1:3::1')).status).toBe(200);
  });
});
