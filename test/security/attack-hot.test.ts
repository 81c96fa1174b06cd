/**
 * Outside review of this session's hot-path changes (scratch-buffer JWS verification, KeySource.cachedKey, sendJson's
 * prebuilt header block, the hand-written request log line, grantOf's in-place folding and reused glob rows). Every
 * test here is an attack: it passes when the attack is held. The attack on the per-connection slow-body deadline is in
 * test/gateway/request-deadline.test.ts, beside that module's own tests and server.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCompactJws, verifyRs256 } from '../../exchange-service/oidc/compact-jws.js';
import { remoteKeySource } from '../../exchange-service/oidc/jwks.js';
import { OAuthError } from '../../exchange-service/errors.js';
import { BODY_LIMIT_BYTES } from '../../exchange-service/http/app.js';
import { requestLineWriter } from '../../exchange-service/request-log.js';
import { createLogger } from '../../exchange-service/service.js';
import { compileGlob } from '../../exchange-service/policy/glob.js';
import { evaluate, grantOf } from '../../exchange-service/policy/match.js';
import { createForger } from '../helpers/forge.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, postForm, TOKEN_EXCHANGE } from '../helpers/service.js';
import { docsClaims, docsSite, policySet } from '../policy/fixtures.js';
import { expectGranted, expectRefused, startSuite, type Suite } from './support.js';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

const send = (token: string, site = 'docs') => () => exchangeToken(suite.svc.url, token, site);
const parts = (token: string) => token.split('.') as [string, string, string];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A genuine token exactly `length` characters long (the header padded), or the longest below it. */
async function tokenOfLength(issuer: TestIssuer, length: number): Promise<string> {
  let pad = 0;
  let best = '';
  for (let attempt = 0; attempt < 40; attempt++) {
    const token = await issuer.token({}, { header: { pad: 'x'.repeat(pad) } });
    if (token.length === length) return token;
    if (token.length < length && token.length > best.length) best = token;
    pad += Math.max(1, Math.floor(((length - token.length) * 3) / 4));
    if (token.length > length) pad -= 2 + attempt;
  }
  return best;
}

describe('scratch-buffer verification of subject tokens', () => {
  it('grants a genuine token at the 16 KiB limit and refuses one character more', async () => {
    const max = await tokenOfLength(suite.issuer, 16 * 1024);
    expect(max.length).toBeGreaterThan(16 * 1024 - 3);
    await expectGranted(suite.svc, send(max));
    await expectRefused(suite.svc, send(`${'A'.repeat(16 * 1024 + 1 - max.length)}${max}`), { status: 400, error: 'invalid_request', reason: 'oversized' });
  });

  it('never takes stale signature bytes from the previous (larger) token: truncated, empty and borrowed signatures', async () => {
    const big = await tokenOfLength(suite.issuer, 16 * 1024);
    const [h, p, s] = parts(big);
    // The big token verified first fills the scratch bytes; each forgery reuses its signing input.
    await expectGranted(suite.svc, send(big));
    for (const signature of ['', s.slice(0, 1), s.slice(0, 4), s.slice(0, -1), s.slice(0, -4)]) {
      await exchangeToken(suite.svc.url, big); // refill the scratch with the genuine bytes (a replay, refused)
      await expectRefused(suite.svc, send(`${h}.${p}.${signature}`), { status: 400, error: 'invalid_request', reason: 'bad_signature' });
    }
    // Another genuine token's signature on this signing input.
    const [, , other] = parts(await suite.issuer.token());
    await expectRefused(suite.svc, send(`${h}.${p}.${other}`), { status: 400, error: 'invalid_request', reason: 'bad_signature' });
  });

  it('refuses a signature longer than it should be (extra base64url characters) and signature bytes appended to the input', async () => {
    const [h, p, s] = parts(await suite.issuer.token());
    for (const extra of ['A', 'AA', 'AAA', 'AAAA', s]) {
      await expectRefused(suite.svc, send(`${h}.${p}.${s}${extra}`), { status: 400, error: 'invalid_request', reason: 'bad_signature' });
    }
    await expectRefused(suite.svc, send(`${h}.${p}${s.slice(0, 4)}.${s}`), { status: 400, error: 'invalid_request' });
  });

  it('refuses non-ASCII, padded and base64url-invalid tokens as malformed', async () => {
    const [h, p, s] = parts(await suite.issuer.token());
    for (const token of [`${h}.${p}.${s}=`, `${h}=.${p}.${s}`, `${h}.${p}.${s.slice(0, -1)}\u00e9`, `${h}.${p}.${s.slice(0, 10)}+/${s.slice(12)}`, `${h}.${p}.${s}\n`, `${h}.${p}.${s}.`, `\u0130${h}.${p}.${s}`]) {
      await expectRefused(suite.svc, send(token), { status: 400, error: 'invalid_request', reason: 'malformed' });
    }
  });

  it('a second spelling of a genuine signature (its unused low bits changed) grants nothing more: refused as a replay', async () => {
    const token = await suite.issuer.token();
    const [h, p, s] = parts(token);
    const last = B64.indexOf(s.at(-1)!);
    const respelled = `${h}.${p}.${s.slice(0, -1)}${B64[last ^ 1]}`;
    await expectGranted(suite.svc, send(token));
    const answer = await send(respelled)();
    expect(answer.status).toBe(400);
    expect(answer.body).not.toHaveProperty('access_token');
  });

  it('two tokens verified concurrently each get their own verdict (50 genuine interleaved with 50 forged)', async () => {
    const forger = createForger();
    const genuine = await Promise.all(Array.from({ length: 50 }, (_, i) => suite.issuer.token({ jti: `hot-${i}-${Date.now()}` }, i % 2 ? { header: { pad: 'y'.repeat(i * 200) } } : {})));
    const forged = genuine.map((t) => {
      const [h, p] = parts(t);
      return `${h}.${p}.${parts(forger.sign({ alg: 'RS256', kid: suite.issuer.kid }, JSON.parse(Buffer.from(p, 'base64url').toString())))[2]}`;
    });
    const answers = await Promise.all(genuine.flatMap((t, i) => [send(forged[i]!)(), send(t)()]));
    answers.forEach((a, i) => expect(a.status, `request ${i}: ${JSON.stringify(a.body)}`).toBe(i % 2 === 1 ? 200 : 400));
  });

  it('verifyRs256 never accepts a token after another token of any size was verified (direct)', async () => {
    const small = decodeCompactJws(await suite.issuer.token())!;
    const big = decodeCompactJws(await tokenOfLength(suite.issuer, 16 * 1024))!;
    const key = (await suite.issuer.publicJwks(), remoteKeySource(suite.issuer.url));
    const k = await key.resolve({ alg: 'RS256', kid: suite.issuer.kid });
    expect(verifyRs256(big, k)).toBe(true);
    const bigParts = parts(big.token);
    const borrowed = decodeCompactJws(`${bigParts[0]}.${bigParts[1]}.${parts(small.token)[2]}`)!;
    expect(verifyRs256(borrowed, k)).toBe(false);
    expect(verifyRs256(small, k)).toBe(true);
    expect(verifyRs256(borrowed, k)).toBe(false);
  });
});

describe('scratch-buffer verification of deploy tokens (Ed25519, /introspect)', () => {
  it('a genuine deploy token is active; its signing input with a stale, truncated, extended or borrowed signature is not', async () => {
    const first = await exchangeToken(suite.svc.url, await suite.issuer.token());
    const second = await exchangeToken(suite.svc.url, await suite.issuer.token());
    const token = String(first.body.access_token);
    const [h, p, s] = parts(token);
    const introspect = (t: string) => postForm(`${suite.svc.url}/introspect`, { token: t }, { authorization: `Bearer ${t}` });
    expect((await introspect(token)).body.active).toBe(true);
    for (const forged of [`${h}.${p}.`, `${h}.${p}.${s.slice(0, -1)}`, `${h}.${p}.${s.slice(0, -2)}`, `${h}.${p}.${s}A`, `${h}.${p}.${s}AAA`, `${h}.${p}.${parts(String(second.body.access_token))[2]}`]) {
      expect((await introspect(token)).body.active).toBe(true); // the genuine bytes in the scratch first
      expect((await introspect(forged)).body.active, forged.slice(-8)).toBe(false);
    }
  });
});

describe('keys taken from KeySource.cachedKey', () => {
  it('gives no key that resolve would refuse: unknown kid, past max age, past stale, during a fetch', async () => {
    const issuer = await startIssuer();
    try {
      let t = 1_000_000;
      const source = remoteKeySource(issuer.url, { now: () => t, maxAgeMs: 1_000, staleMs: 5_000, cooldownMs: 100 });
      expect(source.cachedKey!(issuer.kid)).toBeUndefined(); // nothing fetched yet
      await source.ready();
      expect(source.cachedKey!(issuer.kid)).toBeDefined();
      for (const kid of ['nope', '__proto__', 'constructor', '', issuer.kid.toUpperCase() === issuer.kid ? issuer.kid.toLowerCase() : issuer.kid.toUpperCase()]) {
        expect(source.cachedKey!(kid), kid).toBeUndefined();
      }
      t += 1_001; // past max age: resolve refreshes in the background; cachedKey must send the caller to resolve
      expect(source.cachedKey!(issuer.kid)).toBeUndefined();
      issuer.setJwksBehaviour('error');
      t += 5_000; // past stale, and the issuer is down: resolve fails closed, so must cachedKey
      expect(source.cachedKey!(issuer.kid)).toBeUndefined();
      await expect(source.resolve({ alg: 'RS256', kid: issuer.kid })).rejects.toBeInstanceOf(OAuthError);
      expect(source.cachedKey!(issuer.kid)).toBeUndefined();
    } finally {
      await issuer.close();
    }
  });

  it('refuses an unknown kid and a known kid on a foreign key over HTTP', async () => {
    await expectRefused(suite.svc, send(await suite.issuer.token({}, { kid: 'not-a-kid' })), { status: 400, error: 'invalid_request', reason: 'unknown_kid' });
    await expectRefused(suite.svc, send(await suite.issuer.token({}, { foreignKey: true })), { status: 400, error: 'invalid_request', reason: 'bad_signature' });
  });
});

const SECURITY = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};
const NO_CACHE = { 'cache-control': 'no-store', pragma: 'no-cache' };

async function raw(url: string, method: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method, body, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

function expectSecurityHeaders(what: string, headers: Headers, oauth: boolean): void {
  for (const [name, value] of Object.entries({ ...SECURITY, ...(oauth ? NO_CACHE : {}) })) expect(headers.get(name), `${what}: ${name}`).toBe(value);
  expect(headers.get('x-request-id'), `${what}: x-request-id`).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
}

describe('every answer carries its security headers', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const json = { 'content-type': 'application/json' };
  const cases: [string, string, string, string | Buffer | undefined, Record<string, string>, number][] = [
    ['denied', 'POST', '/token', new URLSearchParams({ ...TOKEN_EXCHANGE, subject_token: 'a.b.c', resource: 'site:docs' }).toString(), form, 400],
    ['wrong content type', 'POST', '/token', 'x', { 'content-type': 'text/plain' }, 400],
    ['oversized form', 'POST', '/token', 'a='.padEnd(BODY_LIMIT_BYTES + 10, 'x'), form, 413],
    ['malformed JSON', 'POST', '/token', '{"a":', json, 400],
    ['UTF-16 JSON', 'POST', '/token', Buffer.from('{"a":"b"}', 'utf16le'), { 'content-type': 'application/json; charset=utf-16le' }, 400],
    ['duplicate JSON key', 'POST', '/token', '{"a":"b","a":"c"}', json, 400],
    ['too many parameters', 'POST', '/token', Array.from({ length: 2000 }, (_, i) => `k${i}=v`).join('&'), form, 413],
    ['GET', 'GET', '/token', undefined, {}, 405],
    ['HEAD', 'HEAD', '/token', undefined, {}, 405],
    ['PUT', 'PUT', '/token', 'x', form, 405],
    ['trailing slash', 'POST', '/token/', 'x', form, 404],
    ['upper case', 'POST', '/TOKEN', 'x', form, 404],
    ['introspect GET', 'GET', '/introspect', undefined, {}, 405],
    ['revoke oversized', 'POST', '/revoke', 'a='.padEnd(BODY_LIMIT_BYTES + 10, 'x'), form, 413],
  ];
  for (const [what, method, path, body, headers, status] of cases) {
    it(`${what}: ${method} ${path} → ${status}`, async () => {
      const answer = await raw(`${suite.svc.url}${path}`, method, body, headers);
      expect(answer.status, answer.text).toBe(status);
      expectSecurityHeaders(what, answer.headers, path.startsWith('/token') || path.startsWith('/introspect') || path.startsWith('/revoke'));
      if (status === 405) expect(answer.headers.get('allow')).toBe('POST');
      if (method !== 'HEAD') expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
      if (method !== 'HEAD') expect(Number(answer.headers.get('content-length'))).toBe(Buffer.byteLength(answer.text));
    });
  }

  it('granted: security headers once each, in one head', async () => {
    const answer = await raw(`${suite.svc.url}/token`, 'POST', new URLSearchParams({ ...TOKEN_EXCHANGE, subject_token: await suite.issuer.token(), resource: 'site:docs' }).toString(), form);
    expect(answer.status, answer.text).toBe(200);
    expectSecurityHeaders('granted', answer.headers, true);
  });

  it('X-Request-Id: a valid one is echoed, anything else replaced (no header or log injection)', async () => {
    const ok = await raw(`${suite.svc.url}/token`, 'POST', 'x', { ...form, 'x-request-id': 'abc.DEF-1_2' });
    expect(ok.headers.get('x-request-id')).toBe('abc.DEF-1_2');
    for (const id of ['a b', 'a"b', 'x'.repeat(65), 'a\tb', 'é']) {
      const answer = await raw(`${suite.svc.url}/token`, 'POST', 'x', { ...form, 'x-request-id': id });
      expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('429 from the address limit carries Retry-After and every security header', async () => {
    const limited = await startSuite({ env: { DEPLOY_STS_RATE_LIMIT_IP: '2' } });
    try {
      let last: Awaited<ReturnType<typeof raw>> | undefined;
      for (let i = 0; i < 4; i++) last = await raw(`${limited.svc.url}/token`, 'POST', 'x', form);
      expect(last!.status).toBe(429);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expectSecurityHeaders('429', last!.headers, true);
      const head = await raw(`${limited.svc.url}/token`, 'HEAD');
      expect(head.status).toBe(429);
      expectSecurityHeaders('429 HEAD', head.headers, true);
    } finally {
      await limited.stop();
    }
  });
});

describe('the request log line', () => {
  const tricky = ['a\nb', 'a\r\n{"level":60}', 'q"uote', 'back\\slash', '\u2028\u2029', '\u0000\u001f\u007f', '\ud800', 'x\udc00y', '\\ud800', 'é日本', 'x'.repeat(150) + '\n', 'x'.repeat(150) + '\ud800', '</script>'];

  it('is byte for byte what pino writes, for every tricky string and number', () => {
    const numbers = [0, -0, 1.5, 1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 53 + 2];
    const values: unknown[] = [...tricky, ...numbers, true, false, null, undefined];
    const fast: string[] = [];
    const slow: string[] = [];
    const sink = (into: string[]) => new Writable({ write(chunk, _e, done) { into.push(chunk.toString()); done(); } });
    const fastDest = { write: (line: string) => void fast.push(line) };
    const writer = requestLineWriter(createLogger('info', fastDest), fastDest);
    const pinoLogger = createLogger('info', sink(slow) as never).child({}, { redact: [] });
    for (const value of values) {
      const fields = { request_id: 'r', method: 'POST', path: '/token', status: 400, site: value, repository: value };
      writer('info', fields);
      pinoLogger.info(fields, 'request');
    }
    // As bytes on the destination (UTF-8: a lone surrogate is written as U+FFFD either way).
    const untimed = (lines: string[]) => Buffer.from(lines.join('')).toString().split('\n').filter(Boolean).map((l) => l.replace(/"time":"[^"]*"/, '"time":"T"'));
    const a = untimed(fast), b = untimed(slow);
    a.forEach((line, i) => expect(line, `value ${i}`).toBe(b[i]));
    expect(a).toHaveLength(b.length);
  });

  it('one parseable line per request, whatever the client puts in site (JSON body) and X-Request-Id', async () => {
    const before = suite.svc.logs.length;
    const token = await suite.issuer.token();
    for (const site of tricky) {
      await fetch(`${suite.svc.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'hot-log' },
        body: JSON.stringify({ ...TOKEN_EXCHANGE, subject_token: token, resource: `site:${site}` }),
      });
    }
    await new Promise((r) => setTimeout(r, 100));
    const lines = suite.svc.logs.slice(before).filter((l) => l.includes('hot-log'));
    expect(lines).toHaveLength(tricky.length);
    for (const line of lines) {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(parsed).toMatchObject({ msg: 'request', request_id: 'hot-log', level: 30 });
      expect(Object.keys(parsed).filter((k) => k === 'level')).toHaveLength(1);
      expect(line).not.toContain(token);
    }
  });
});

describe('grantOf agrees with evaluate', () => {
  const set = policySet({ 'docs.yml': docsSite() });
  const base = docsClaims();
  const variants: Record<string, unknown>[] = [];
  const repo = String(base.repository);
  const jwr = String(base.job_workflow_ref);
  for (const r of [repo.toUpperCase(), repo.replace('a', '\u212a'), repo.replace('s', '\u017f'), repo.replace('i', '\u0130'), repo.replace('o', '\uff4f'), `${repo} `, `${repo}\u0000`, repo.replace('c', 'C\u0301'), repo.slice(0, -1), `${repo}/`]) {
    variants.push({ ...base, repository: r });
  }
  for (const w of [jwr.toUpperCase(), jwr.replace('acme', 'ACME'), jwr.replace('deploy', 'DEPLOY'), jwr.replace('main', 'MAIN'), jwr.replace('a', '\u212a'), jwr.replace('acme/docs', 'acme/docs/..'), jwr.replace('/.github', '//.github')]) {
    variants.push({ ...base, job_workflow_ref: w });
  }
  for (const e of ['Production', 'PRODUCTION', 'production\u0000', 'producti\u043en', 'production ']) variants.push({ ...base, environment: e });
  for (const ref of ['refs/heads/MAIN', 'refs/heads/main/', 'Refs/heads/main']) variants.push({ ...base, ref });

  it('for case, Unicode look-alikes and separators in repository, job_workflow_ref, environment and ref', () => {
    for (const claims of variants) {
      const fast = grantOf(set, 'docs', claims);
      const traced = evaluate(set, 'docs', claims);
      expect(fast?.granted ?? false, JSON.stringify(claims)).toBe(traced.granted);
      // Only ASCII case folding of repository names and owner/repo is allowed to grant.
      if (fast) {
        expect(String(claims.repository).toLowerCase()).toBe(repo.toLowerCase());
        expect(String(claims.environment ?? '').toLowerCase()).toBe(String(base.environment ?? '').toLowerCase());
      }
    }
  });

  it('glob state rows reused across patterns of every length give the same answers as a fresh regex', () => {
    const toRegex = (p: string) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '[\\s\\S]*')}$`);
    const patterns = ['a*', `${'ab/'.repeat(40)}**`, 'a', `${'xy'.repeat(40)}*z`, '**/b', `${'q'.repeat(100)}*`, '*'];
    const values = ['a', 'ab', `${'ab/'.repeat(40)}z`, `${'xy'.repeat(40)}qqz`, `${'xy'.repeat(40)}z/z`, 'c/b', '/b', `${'q'.repeat(100)}`, 'a/b', ''];
    for (let round = 0; round < 3; round++) {
      for (const p of round === 1 ? [...patterns].reverse() : patterns) {
        const glob = compileGlob(p);
        for (const v of values) expect(glob.test(v), `${p} ~ ${v}`).toBe(toRegex(p).test(v));
      }
    }
  });
});
