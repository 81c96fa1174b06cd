/**
 * Issuer and audience look-alikes, and the token's time window. Every token here is signed with the trusted
 * issuer's real key: only the claims lie. Times are relative to now with margins of 40 s or more around each
 * boundary (60 s clock tolerance, 10 min maximum age), so no case depends on how fast the test runs.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { exchangeToken } from '../helpers/service.js';
import { expectGranted, expectRefused, nowSeconds, startSuite, type Suite } from './support.js';

let suite: Suite;

beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

const exchange = (claims: Record<string, unknown>) => async () => exchangeToken(suite.svc.url, await suite.issuer.token(claims));
const refused = (reason: string, description?: RegExp) => ({ status: 400, error: 'invalid_request', reason, ...(description ? { description } : {}) });

describe('issuer look-alikes', () => {
  const lookalikes: [string, () => unknown][] = [
    ['a trailing slash', () => `${suite.issuer.url}/`],
    ['another port', () => suite.issuer.url.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) + 1}`)],
    ['another host name for the same address', () => suite.issuer.url.replace('127.0.0.1', 'localhost')],
    ['https instead of http', () => suite.issuer.url.replace('http://', 'https://')],
    ['upper case', () => suite.issuer.url.toUpperCase()],
    ['a path appended', () => `${suite.issuer.url}/evil`],
    ['GitHub\'s issuer with a suffix', () => 'https://token.actions.githubusercontent.com.evil'],
    ['GitHub\'s issuer (not on this service\'s allowlist)', () => 'https://token.actions.githubusercontent.com'],
    ['an array holding the trusted issuer', () => [suite.issuer.url]],
    ['an object', () => ({ url: suite.issuer.url })],
    ['a number', () => 1],
    ['no issuer at all', () => undefined],
  ];
  for (const [name, iss] of lookalikes) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange({ iss: iss() }), refused('untrusted_issuer', /issuer .* is not trusted/));
    });
  }
});

describe('audience look-alikes', () => {
  const lookalikes: [string, () => unknown, string][] = [
    ['GitHub\'s default audience', () => 'https://github.com/acme', 'bad_audience'],
    ['a trailing slash', () => `${suite.svc.audience}/`, 'bad_audience'],
    ['upper case', () => suite.svc.audience.toUpperCase(), 'bad_audience'],
    ['a suffix', () => `${suite.svc.audience}.evil`, 'bad_audience'],
    ['a prefix', () => `evil.${suite.svc.audience}`, 'bad_audience'],
    ['an empty string', () => '', 'bad_audience'],
    ['no audience at all', () => undefined, 'bad_audience'],
    ['an array holding only other audiences', () => ['https://github.com/acme', 'https://other'], 'bad_audience'],
    // A JWT library accepts an array that contains the audience; GitHub sends exactly one string, so must the token.
    ['an array holding the audience', () => [suite.svc.audience], 'bad_audience'],
    ['an array holding the audience and another', () => [suite.svc.audience, 'https://other.example'], 'bad_audience'],
    ['an object', () => ({ aud: suite.svc.audience }), 'bad_audience'],
  ];
  for (const [name, aud, reason] of lookalikes) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange({ aud: aud() }), refused(reason, /audience/));
    });
  }
});

describe('required time claims', () => {
  for (const claim of ['exp', 'nbf', 'iat', 'jti'] as const) {
    it(`refuses a token without ${claim}`, async () => {
      await expectRefused(suite.svc, exchange({ [claim]: undefined }), { status: 400, error: 'invalid_request', description: new RegExp(claim) });
    });
  }

  const wrongTypes: [string, Record<string, unknown>][] = [
    ['exp as a string', { exp: String(nowSeconds() + 300) }],
    ['exp with a fraction', { exp: nowSeconds() + 300.5 }],
    ['iat as a string', { iat: String(nowSeconds()) }],
    ['nbf as null', { nbf: null }],
    ['nbf as a string', { nbf: 'yesterday' }],
    ['nbf beyond the calendar', { nbf: 1e17 }],
    ['iat before the calendar', { iat: -1e17 }],
    ['exp beyond the safe integers', { exp: 1e17 }],
    ['an empty jti', { jti: '' }],
    ['a jti over 256 characters', { jti: 'j'.repeat(257) }],
  ];
  for (const [name, claims] of wrongTypes) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange(claims), { status: 400, error: 'invalid_request' });
    });
  }
});

describe('the time window (60 s tolerance, 10 min maximum age)', () => {
  it('refuses a token that expired well beyond the tolerance', async () => {
    const now = nowSeconds();
    await expectRefused(suite.svc, exchange({ iat: now - 400, nbf: now - 400, exp: now - 120 }), refused('expired', /expired/));
  });

  it('accepts a token that expired within the tolerance (boundary control)', async () => {
    const now = nowSeconds();
    await expectGranted(suite.svc, exchange({ iat: now - 300, nbf: now - 300, exp: now - 20 }));
  });

  it('refuses a token not valid until well beyond the tolerance', async () => {
    const now = nowSeconds();
    await expectRefused(suite.svc, exchange({ nbf: now + 120 }), refused('not_yet_valid', /not valid yet/));
  });

  it('accepts a token whose nbf is just inside the tolerance (boundary control)', async () => {
    await expectGranted(suite.svc, exchange({ nbf: nowSeconds() + 20 }));
  });

  it('refuses a token issued well in the future', async () => {
    const now = nowSeconds();
    await expectRefused(suite.svc, exchange({ iat: now + 120, nbf: now - 5, exp: now + 400 }), { status: 400, error: 'invalid_request', description: /iat|issued/ });
  });

  it('refuses a token older than the maximum age, even though it has not expired', async () => {
    const now = nowSeconds();
    await expectRefused(suite.svc, exchange({ iat: now - 700, nbf: now - 700, exp: now + 120 }), refused('too_old', /maximum age/));
  });

  it('refuses a long-lived token once it is older than the maximum age', async () => {
    const now = nowSeconds();
    await expectRefused(suite.svc, exchange({ iat: now - 3600, nbf: now - 3600, exp: now + 86_400 }), refused('too_old'));
  });

  it('accepts a token comfortably inside the maximum age (boundary control)', async () => {
    const now = nowSeconds();
    await expectGranted(suite.svc, exchange({ iat: now - 540, nbf: now - 540, exp: now + 60 }));
  });
});
