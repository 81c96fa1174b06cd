import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter, addressKey } from '../../exchange-service/rate-limit.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, startService, type TestService } from '../helpers/service.js';

describe('the token bucket', () => {
  it('allows a minute\'s worth at once, then refuses with the seconds until the next token', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 6, now: () => now });
    for (let i = 0; i < 6; i++) expect(limiter.take('a').allowed).toBe(true);
    const refused = limiter.take('a');
    expect(refused).toEqual({ allowed: false, retryAfter: 10 });
    expect(limiter.take('b').allowed).toBe(true);
    now += 10_000;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('keeps memory bounded by evicting the least recently seen key', () => {
    const limiter = new RateLimiter({ perMinute: 1, maxKeys: 2, now: () => 0 });
    limiter.take('a');
    limiter.take('b');
    limiter.take('c'); // evicts a
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('c').allowed).toBe(false);
  });

  it('is unlimited at 0', () => {
    const limiter = new RateLimiter({ perMinute: 0 });
    for (let i = 0; i < 1000; i++) expect(limiter.take('a').allowed).toBe(true);
  });
});

describe('rate limits on /token', () => {
  let issuer: TestIssuer;
  let svc: TestService;
  beforeAll(async () => {
    issuer = await startIssuer();
    svc = await startService({ issuer: issuer.url, env: { DEPLOY_STS_RATE_LIMIT_REPOSITORY: '3', DEPLOY_STS_RATE_LIMIT_IP: '1000' } });
  });
  afterAll(async () => {
    await svc.stop();
    await issuer.close();
  });

  it('answers 429 with Retry-After once a repository is over its limit, and records it', async () => {
    for (let i = 0; i < 3; i++) expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    const limited = await exchangeToken(svc.url, await issuer.token());
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body.error).toBe('temporarily_unavailable');
    expect(limited.body).not.toHaveProperty('access_token');
    // Another repository is not affected.
    const other = await exchangeToken(svc.url, await issuer.token({ repository_id: '1', repository: 'acme/other' }));
    expect(other.status).toBe(400);
    const audit = await svc.service.storage.listAudit({ limit: 10 });
    expect(audit.some((r) => r.reason === 'rate_limited' && r.repositoryId === '892043217')).toBe(true);
  });
});

describe('the key of a client address', () => {
  it('is the /64 prefix for IPv6, however the address is spelt', () => {
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:0000:0000:0000:0001')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
  });

  it('is the address itself for IPv4, mapped into IPv6 or not', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('unknown')).toBe('unknown');
  });
});
