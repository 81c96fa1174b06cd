/**
 * Signatures and algorithms: only an RS256 signature by a key the trusted issuer publishes makes a subject token
 * genuine. Unsigned, HMAC-with-the-public-key, foreign-key, tampered, self-describing-key (`jku`/`x5u`/`jwk`),
 * `crit`, malformed and oversized tokens are refused — with no token, an RFC error and an audit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteKeySource } from '../../exchange-service/oidc/jwks.js';
import { OAuthError } from '../../exchange-service/errors.js';
import {
  b64url,
  compact,
  createForger,
  hmacWithPublicKey,
  publicKeyPem,
  startHitCounter,
  unsignedToken,
  withPayload,
  type Forger,
  type HitCounter,
} from '../helpers/forge.js';
import { startIssuer } from '../helpers/issuer.js';
import { exchangeToken, postForm, TOKEN_EXCHANGE } from '../helpers/service.js';
import { expectGranted, expectRefused, startSuite, type Suite } from './support.js';

let suite: Suite;
let forger: Forger;
let counter: HitCounter;

beforeAll(async () => {
  suite = await startSuite();
  forger = createForger();
  counter = await startHitCounter();
});
afterAll(async () => {
  await suite?.stop();
  await counter?.close();
});

const send = (token: string) => () => exchangeToken(suite.svc.url, token);
const invalidRequest = (reason: string, description?: RegExp) => ({ status: 400, error: 'invalid_request', reason, ...(description ? { description } : {}) });

describe('unsigned and symmetric tokens', () => {
  for (const alg of ['none', 'None', 'NONE']) {
    it(`refuses alg "${alg}" even with the issuer's kid and perfect claims`, async () => {
      const token = unsignedToken({ alg, kid: suite.issuer.kid }, suite.issuer.claims());
      await expectRefused(suite.svc, send(token), invalidRequest('bad_algorithm', /algorithm .* is not accepted/));
    });
  }

  it('refuses alg "none" carrying a made-up signature', async () => {
    const token = unsignedToken({ alg: 'none', kid: suite.issuer.kid }, suite.issuer.claims(), b64url('signature'));
    await expectRefused(suite.svc, send(token), invalidRequest('bad_algorithm'));
  });

  it('refuses HS256 keyed with the issuer\'s public key as PEM (key confusion)', async () => {
    const pem = publicKeyPem(suite.issuer.publicJwks().keys[0]!);
    const token = hmacWithPublicKey({ kid: suite.issuer.kid }, suite.issuer.claims(), pem);
    await expectRefused(suite.svc, send(token), invalidRequest('bad_algorithm'));
  });

  it('refuses HS256 keyed with the issuer\'s JWK as JSON, and HS512', async () => {
    const jwk = JSON.stringify(suite.issuer.publicJwks().keys[0]);
    await expectRefused(suite.svc, send(hmacWithPublicKey({ kid: suite.issuer.kid }, suite.issuer.claims(), jwk)), invalidRequest('bad_algorithm'));
    const hs512 = hmacWithPublicKey({ alg: 'HS512', kid: suite.issuer.kid }, suite.issuer.claims(), jwk);
    await expectRefused(suite.svc, send(hs512), invalidRequest('bad_algorithm'));
  });

  for (const alg of ['RS512', 'PS256', 'ES256', 'EdDSA', 'rs256']) {
    it(`refuses alg "${alg}": RS256 only, compared exactly`, async () => {
      const token = forger.sign({ alg, kid: suite.issuer.kid }, suite.issuer.claims());
      await expectRefused(suite.svc, send(token), invalidRequest('bad_algorithm'));
    });
  }
});

describe('keys that are not the issuer\'s', () => {
  it('refuses a foreign key reusing the issuer\'s kid', async () => {
    await expectRefused(suite.svc, send(await suite.issuer.token({}, { foreignKey: true })), invalidRequest('bad_signature', /signature/));
  });

  it('refuses a genuine token whose claims were changed after signing', async () => {
    const genuine = await suite.issuer.token({ event_name: 'pull_request_target' });
    const tampered = withPayload(genuine, suite.issuer.claims({ event_name: 'push' }));
    await expectRefused(suite.svc, send(tampered), invalidRequest('bad_signature'));
  });

  it('refuses a genuine signature moved onto another header', async () => {
    const genuine = await suite.issuer.token();
    const [, payload, signature] = genuine.split('.');
    const header = b64url({ alg: 'RS256', typ: 'JWT', kid: suite.issuer.kid, x5t: 'other' });
    await expectRefused(suite.svc, send(compact(header, payload!, signature!)), invalidRequest('bad_signature'));
  });

  it('refuses a token without a kid, or with a kid that is not a string', async () => {
    await expectRefused(suite.svc, send(forger.sign({ kid: undefined }, suite.issuer.claims())), invalidRequest('unknown_kid'));
    await expectRefused(suite.svc, send(forger.sign({ kid: 1 }, suite.issuer.claims())), invalidRequest('unknown_kid'));
  });
});

describe('headers that name their own key (jku, x5u, jwk)', () => {
  for (const name of ['jku', 'x5u'] as const) {
    it(`never fetches ${name}: a forger's token pointing at its own key set is refused, and the URL gets no request`, async () => {
      const url = `${counter.url}/${name}/keys.json`;
      const before = counter.hits();
      await expectRefused(suite.svc, send(forger.sign({ kid: forger.kid, [name]: url }, suite.issuer.claims())), invalidRequest('unknown_kid'));
      await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, [name]: url }, suite.issuer.claims())), invalidRequest('bad_signature'));
      expect(counter.hits()).toBe(before);
    });

    it(`ignores ${name} on a genuine token: judged on the issuer's key alone, still no request`, async () => {
      const before = counter.hits();
      const token = await suite.issuer.token({}, { header: { [name]: `${counter.url}/${name}` } });
      await expectGranted(suite.svc, send(token));
      expect(counter.hits()).toBe(before);
    });
  }

  it('ignores an embedded jwk: the forger\'s own public key in the header proves nothing', async () => {
    const before = counter.hits();
    await expectRefused(suite.svc, send(forger.sign({ kid: forger.kid, jwk: forger.publicJwk }, suite.issuer.claims())), invalidRequest('unknown_kid'));
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, jwk: forger.publicJwk }, suite.issuer.claims())), invalidRequest('bad_signature'));
    // An embedded key with a URL of its own is not followed either.
    const lure = { ...forger.publicJwk, x5u: `${counter.url}/jwk-x5u` };
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, jwk: lure, jku: `${counter.url}/jku` }, suite.issuer.claims())), invalidRequest('bad_signature'));
    expect(counter.hits()).toBe(before);
  });
});

describe('critical header parameters', () => {
  it('refuses crit naming an extension the service does not understand', async () => {
    const token = forger.sign({ kid: suite.issuer.kid, crit: ['x-deploy-override'], 'x-deploy-override': true }, suite.issuer.claims());
    await expectRefused(suite.svc, send(token), invalidRequest('unsupported_header'));
  });

  it('refuses crit naming a registered claim, and a malformed crit', async () => {
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, crit: ['exp'] }, suite.issuer.claims())), { status: 400, error: 'invalid_request' });
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, crit: [] }, suite.issuer.claims())), { status: 400, error: 'invalid_request' });
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid, crit: 'x' }, suite.issuer.claims())), { status: 400, error: 'invalid_request' });
  });

  it('refuses an unencoded payload (b64: false)', async () => {
    const token = forger.sign({ kid: suite.issuer.kid, crit: ['b64'], b64: false }, suite.issuer.claims());
    await expectRefused(suite.svc, send(token), { status: 400, error: 'invalid_request' });
  });
});

describe('malformed tokens', () => {
  const header = () => b64url({ alg: 'RS256', typ: 'JWT', kid: suite.issuer.kid });
  const payload = () => b64url(suite.issuer.claims());
  const cases: [string, () => string][] = [
    ['not a JWT at all', () => 'not-a-jwt'],
    ['two parts', () => compact(header(), payload())],
    ['five parts (a JWE shape)', () => compact(header(), payload(), 'a', 'b', 'c')],
    ['a header that is not base64url', () => compact('%%%', payload(), 'sig')],
    ['a header that is not JSON', () => compact(b64url('{"alg":"RS256",'), payload(), 'sig')],
    ['a header that is a JSON array', () => compact(b64url(['RS256']), payload(), 'sig')],
    ['claims that are not JSON', () => compact(header(), b64url('{"iss":'), 'sig')],
    ['claims that are a JSON string', () => compact(header(), b64url('"hello"'), 'sig')],
    ['claims that are null', () => compact(header(), b64url('null'), 'sig')],
    ['empty header and claims', () => compact('', '', 'sig')],
  ];
  for (const [name, make] of cases) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, send(make()), invalidRequest('malformed', /well-formed JWT|invalid/));
    });
  }

  it('refuses a genuine header and claims with a signature that is not base64url', async () => {
    const genuine = await suite.issuer.token();
    const [h, p] = genuine.split('.');
    await expectRefused(suite.svc, send(compact(h!, p!, '***not-base64***')), { status: 400, error: 'invalid_request' });
  });

  it('refuses claims signed as text that is not JSON, even with a valid forger signature', async () => {
    await expectRefused(suite.svc, send(forger.sign({ kid: suite.issuer.kid }, 'not json')), invalidRequest('malformed'));
  });
});

describe('oversized tokens', () => {
  it('refuses a genuinely signed token over 16 KiB before looking at it', async () => {
    const before = suite.issuer.requests['/.well-known/jwks'] ?? 0;
    const token = await suite.issuer.token({ padding: 'x'.repeat(17 * 1024) });
    await expectRefused(suite.svc, send(token), invalidRequest('oversized', /larger than/));
    expect(suite.issuer.requests['/.well-known/jwks'] ?? 0).toBe(before);
  });

  it('answers 413 to a token larger than the body limit', async () => {
    const token = await suite.issuer.token({ padding: 'x'.repeat(40 * 1024) });
    await expectRefused(suite.svc, send(token), { status: 413, error: 'invalid_request', reason: 'too_large' });
  });

  it('refuses a token with a huge kid without fetching keys', async () => {
    const before = suite.issuer.requests['/.well-known/jwks'] ?? 0;
    await expectRefused(suite.svc, send(forger.sign({ kid: 'k'.repeat(8 * 1024) }, suite.issuer.claims())), invalidRequest('unknown_kid'));
    expect(suite.issuer.requests['/.well-known/jwks'] ?? 0).toBeLessThanOrEqual(before + 1);
  });
});

describe('unknown kids and the JWKS cooldown', () => {
  let fresh: Suite;
  beforeAll(async () => {
    fresh = await startSuite();
  });
  afterAll(async () => {
    await fresh?.stop();
  });

  it('a flood of 200 random kids costs the issuer one JWKS fetch, and each is refused and audited', async () => {
    const jwksHits = () => fresh.issuer.requests['/.well-known/jwks'] ?? 0;
    expect(jwksHits()).toBe(0);
    await expectRefused(fresh.svc, () => exchangeToken(fresh.svc.url, forger.sign({ kid: 'kid-0' }, fresh.issuer.claims())), invalidRequest('unknown_kid', /no key with kid "kid-0"/));
    expect(jwksHits()).toBe(1);

    const tokens = Array.from({ length: 200 }, (_, i) => forger.sign({ kid: `random-${i}-${Math.random().toString(36).slice(2)}` }, fresh.issuer.claims()));
    const answers: { status: number; body: Record<string, unknown> }[] = [];
    const queue = [...tokens];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let t = queue.shift(); t !== undefined; t = queue.shift()) answers.push(await exchangeToken(fresh.svc.url, t));
      }),
    );
    expect(answers).toHaveLength(200);
    for (const a of answers) {
      expect(a.status).toBe(400);
      expect(a.body.error).toBe('invalid_request');
      expect(a.body).not.toHaveProperty('access_token');
    }
    expect(jwksHits()).toBe(1);
    expect(fresh.issuer.requests['/.well-known/openid-configuration']).toBe(1);
    const audit = await fresh.svc.service.storage.listAudit({ limit: 1000 });
    expect(audit.filter((r) => r.reason === 'unknown_kid')).toHaveLength(201);

    // The cached keys still serve genuine tokens.
    const genuine = await fresh.issuer.token();
    await expectGranted(fresh.svc, () => exchangeToken(fresh.svc.url, genuine));
  });
});

describe('the key source refetches an unknown kid once per cooldown', () => {
  it('one refetch after the cooldown, none during it, however many kids arrive', async () => {
    const issuer = await startIssuer();
    try {
      let now = 1_000_000;
      const source = remoteKeySource(issuer.url, { cooldownMs: 30_000, now: () => now });
      const jwksHits = () => issuer.requests['/.well-known/jwks'] ?? 0;
      const resolveKid = (kid: string) => source.resolve({ alg: 'RS256', kid }, { payload: '', signature: '', protected: '' });

      await source.ready();
      expect(jwksHits()).toBe(1);
      await expect(resolveKid('unknown-1')).rejects.toBeInstanceOf(OAuthError);
      expect(jwksHits()).toBe(1); // within the cooldown of the first fetch

      now += 30_000;
      const flood = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => resolveKid(`unknown-${i}`)));
      expect(flood.every((r) => r.status === 'rejected' && (r.reason as OAuthError).reason === 'unknown_kid')).toBe(true);
      expect(jwksHits()).toBe(2); // exactly one refetch for the whole flood

      for (let i = 0; i < 50; i++) await expect(resolveKid(`later-${i}`)).rejects.toBeInstanceOf(OAuthError);
      expect(jwksHits()).toBe(2);

      // A key the issuer rotated in is found by the next refetch after the cooldown.
      const rotated = await issuer.rotate();
      now += 30_000;
      await expect(resolveKid(rotated)).resolves.toBeDefined();
      expect(jwksHits()).toBe(3);
    } finally {
      await issuer.close();
    }
  });
});

describe('a token request whose subject token is signed correctly is the control', () => {
  it('is granted (so the refusals above are about the attack, not the set-up)', async () => {
    await expectGranted(suite.svc, send(await suite.issuer.token()));
    const res = await postForm(`${suite.svc.url}/token`, { ...TOKEN_EXCHANGE, subject_token: await suite.issuer.token(), resource: 'site:docs' });
    expect(res.status).toBe(200);
  });
});
