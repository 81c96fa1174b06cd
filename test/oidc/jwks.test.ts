/** The issuer key source never hammers the issuer: every fetch respects the cooldown, whatever triggers it. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OAuthError } from '../../exchange-service/errors.js';
import { remoteKeySource, type KeySource } from '../../exchange-service/oidc/jwks.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';

let issuer: TestIssuer;
let clock: number;
let source: KeySource;
const jwksHits = () => issuer.requests['/.well-known/jwks'] ?? 0;
const resolve = (kid: string) => source.resolve({ alg: 'RS256', kid }, { payload: '', signature: '', protected: '' });
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof OAuthError ? e.reason : String(e)));

beforeEach(async () => {
  issuer = await startIssuer();
  clock = 1_000_000;
  source = remoteKeySource(issuer.url, { now: () => clock, cooldownMs: 30_000, maxAgeMs: 600_000, staleMs: 3_600_000, timeoutMs: 2_000 });
});
afterEach(async () => {
  await issuer.close();
});

describe('the issuer key source', () => {
  it('fetches once, then serves the cached keys', async () => {
    for (let i = 0; i < 20; i++) expect(await code(resolve(issuer.kid))).toBe('ok');
    expect(jwksHits()).toBe(1);
  });

  it('refetches at most once per cooldown for a flood of unknown kids', async () => {
    await resolve(issuer.kid);
    expect(await code(resolve('too-soon'))).toBe('unknown_kid'); // inside the first fetch's cooldown: no refetch
    expect(jwksHits()).toBe(1);
    clock += 31_000;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => code(resolve(`random-${i}`))));
    expect(new Set(results)).toEqual(new Set(['unknown_kid']));
    expect(jwksHits()).toBe(2);
    clock += 31_000;
    await code(resolve('another'));
    expect(jwksHits()).toBe(3);
  });

  it('picks up a rotated issuer key through one refetch', async () => {
    await resolve(issuer.kid);
    const kid = await issuer.rotate();
    clock += 31_000;
    expect(await code(resolve(kid))).toBe('ok');
  });

  it('answers 503 without refetching while the issuer is failing and there are no keys yet', async () => {
    issuer.setJwksBehaviour('error');
    for (let i = 0; i < 50; i++) expect(await code(resolve(issuer.kid))).toBe('jwks_unavailable');
    expect(jwksHits()).toBe(1);
    issuer.setJwksBehaviour('ok');
    clock += 31_000;
    expect(await code(resolve(issuer.kid))).toBe('ok');
  });

  it('serves stale keys while refreshing in the background, and stops trusting them past the stale limit', async () => {
    await resolve(issuer.kid);
    issuer.setJwksBehaviour('error');
    clock += 700_000; // older than maxAge: stale but usable
    for (let i = 0; i < 50; i++) expect(await code(resolve(issuer.kid))).toBe('ok');
    await new Promise((r) => setTimeout(r, 100));
    expect(jwksHits()).toBe(2);
    clock += 3_600_000; // past the stale limit
    expect(await code(resolve(issuer.kid))).toBe('jwks_unavailable');
    expect(await code(resolve(issuer.kid))).toBe('jwks_unavailable');
    expect(jwksHits()).toBe(3);
  });

  it('refuses a key set larger than the size limit', async () => {
    issuer.setJwksBehaviour('huge');
    expect(await code(resolve(issuer.kid))).toBe('jwks_unavailable');
  });
});
