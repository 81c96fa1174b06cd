/**
 * Protocol misuse of POST /token: wrong grant and token types, duplicated or array-valued parameters, other
 * methods, other content types, malformed and oversized bodies (a compressed one included), prototype-pollution
 * keys, and a minted deploy token presented as a subject token. Each is refused with the RFC 6749 error and status,
 * no token, and an audit record — even when the subject token in the request is genuine.
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeToken, postForm, TOKEN_EXCHANGE } from '../helpers/service.js';
import { expectGranted, expectRefused, startSuite, type Answer, type Suite } from './support.js';

let suite: Suite;

beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

const GRANT = TOKEN_EXCHANGE.grant_type;
const ID_TOKEN = TOKEN_EXCHANGE.subject_token_type;

async function raw(init: { method?: string; body?: string | Buffer; headers?: Record<string, string>; query?: string }): Promise<Answer> {
  const response = await fetch(`${suite.svc.url}/token${init.query ?? ''}`, {
    method: init.method ?? 'POST',
    ...(init.body !== undefined ? { body: init.body } : {}),
    headers: init.headers ?? {},
  });
  const text = await response.text();
  expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const form = (fields: Record<string, string | string[]>) => () => postForm(`${suite.svc.url}/token`, fields);
const json = (value: unknown) => () => raw({ body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });
const withToken = async (fields: Record<string, string | string[]>) => ({ subject_token: await suite.issuer.token(), resource: 'site:docs', ...fields });
const invalidRequest = { status: 400, error: 'invalid_request' };

describe('grant types', () => {
  for (const grant of ['authorization_code', 'client_credentials', 'refresh_token', 'password', 'urn:ietf:params:oauth:grant-type:jwt-bearer', GRANT.toUpperCase(), `${GRANT} `]) {
    it(`refuses grant_type ${JSON.stringify(grant)} with unsupported_grant_type`, async () => {
      await expectRefused(suite.svc, form(await withToken({ grant_type: grant, subject_token_type: ID_TOKEN })), {
        status: 400,
        error: 'unsupported_grant_type',
        reason: 'unsupported_grant_type',
      });
    });
  }

  it('refuses a request without grant_type', async () => {
    await expectRefused(suite.svc, form(await withToken({ subject_token_type: ID_TOKEN })), { ...invalidRequest, description: /grant_type is missing/ });
  });
});

describe('token types', () => {
  for (const type of ['urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:refresh_token', 'urn:ietf:params:oauth:token-type:saml2', `${ID_TOKEN} `, 'id_token']) {
    it(`refuses subject_token_type ${JSON.stringify(type)}`, async () => {
      await expectRefused(suite.svc, form(await withToken({ grant_type: GRANT, subject_token_type: type })), { ...invalidRequest, description: /subject_token_type must be/ });
    });
  }

  it('refuses a request without subject_token_type', async () => {
    await expectRefused(suite.svc, form(await withToken({ grant_type: GRANT })), invalidRequest);
  });

  for (const type of ['urn:ietf:params:oauth:token-type:refresh_token', ID_TOKEN, 'urn:ietf:params:oauth:token-type:jwt']) {
    it(`refuses requested_token_type ${JSON.stringify(type)}: only access tokens are issued`, async () => {
      await expectRefused(suite.svc, form(await withToken({ ...TOKEN_EXCHANGE, requested_token_type: type })), { ...invalidRequest, description: /requested_token_type/ });
    });
  }

  it('refuses a subject token that is missing or empty', async () => {
    await expectRefused(suite.svc, form({ ...TOKEN_EXCHANGE, resource: 'site:docs' }), { ...invalidRequest, description: /subject_token is missing/ });
    await expectRefused(suite.svc, form({ ...TOKEN_EXCHANGE, resource: 'site:docs', subject_token: '' }), invalidRequest);
  });
});

describe('duplicated and array-valued parameters', () => {
  for (const name of ['grant_type', 'subject_token', 'subject_token_type', 'resource', 'scope'] as const) {
    it(`refuses ${name} given twice in a form, even with the same value`, async () => {
      const fields: Record<string, string | string[]> = await withToken({ ...TOKEN_EXCHANGE, scope: 'deployments:write' });
      fields[name] = [fields[name] as string, fields[name] as string];
      await expectRefused(suite.svc, form(fields), { ...invalidRequest, reason: 'duplicate_parameter' });
    });
  }

  it('refuses resource and audience naming different sites', async () => {
    await expectRefused(suite.svc, form(await withToken({ ...TOKEN_EXCHANGE, audience: 'site:other' })), { status: 400, error: 'invalid_target' });
  });

  const shapes: [string, unknown][] = [
    ['an array', ['x']],
    ['an object', { token: 'x' }],
    ['a number', 1],
    ['a boolean', true],
    ['null', null],
  ];
  for (const [name, value] of shapes) {
    it(`refuses a JSON subject_token that is ${name}`, async () => {
      await expectRefused(suite.svc, json({ ...TOKEN_EXCHANGE, resource: 'site:docs', subject_token: value }), invalidRequest);
    });
  }

  it('refuses a JSON resource that is an array of the right site', async () => {
    await expectRefused(suite.svc, json({ ...(await withToken(TOKEN_EXCHANGE)), resource: ['site:docs'] }), { ...invalidRequest, reason: 'duplicate_parameter' });
  });

  it('refuses a JSON body that is an array of requests', async () => {
    await expectRefused(suite.svc, json([await withToken(TOKEN_EXCHANGE)]), invalidRequest);
  });

  it('does not take fields from __proto__ or constructor keys, and pollutes nothing', async () => {
    const inner = await withToken(TOKEN_EXCHANGE);
    const body = `{"__proto__": ${JSON.stringify(inner)}, "constructor": {"prototype": ${JSON.stringify(inner)}}}`;
    await expectRefused(suite.svc, () => raw({ body, headers: { 'content-type': 'application/json' } }), { ...invalidRequest, description: /grant_type is missing/ });
    const pollutedForm = new URLSearchParams({ '__proto__[grant_type]': GRANT, 'constructor[prototype][grant_type]': GRANT });
    await expectRefused(suite.svc, () => raw({ body: pollutedForm.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } }), invalidRequest);
    expect(({} as Record<string, unknown>).grant_type).toBeUndefined();
  });

  it('refuses more than 20 parameters with 413', async () => {
    const fields: Record<string, string> = await withToken(TOKEN_EXCHANGE);
    for (let i = 0; i < 30; i++) fields[`x${i}`] = 'y';
    await expectRefused(suite.svc, form(fields), { status: 413, error: 'invalid_request', reason: 'too_many_parameters' });
  });
});

describe('methods', () => {
  for (const method of ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    it(`answers ${method} /token with 405 and Allow: POST`, async () => {
      const { answer } = await expectRefused(suite.svc, () => raw({ method }), { status: 405, error: 'invalid_request', reason: 'method_not_allowed' });
      expect(answer.headers.get('allow')).toBe('POST');
    });
  }

  it('does not exchange a genuine token sent in a GET query string', async () => {
    const query = `?${new URLSearchParams(await withToken(TOKEN_EXCHANGE)).toString()}`;
    await expectRefused(suite.svc, () => raw({ method: 'GET', query }), { status: 405, error: 'invalid_request' });
  });

  it('does not exchange a genuine token sent in a PUT form body', async () => {
    const body = new URLSearchParams(await withToken(TOKEN_EXCHANGE)).toString();
    await expectRefused(suite.svc, () => raw({ method: 'PUT', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), { status: 405, error: 'invalid_request' });
  });
});

describe('content types and bodies', () => {
  const body = async () => new URLSearchParams(await withToken(TOKEN_EXCHANGE)).toString();
  for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/jwt']) {
    it(`refuses Content-Type ${type}`, async () => {
      const text = await body();
      await expectRefused(suite.svc, () => raw({ body: text, headers: { 'content-type': type } }), { ...invalidRequest, reason: 'bad_content_type', description: /Content-Type/ });
    });
  }

  it('refuses a body without a Content-Type', async () => {
    const text = Buffer.from(await body());
    await expectRefused(suite.svc, () => raw({ body: text }), { ...invalidRequest, reason: 'bad_content_type' });
  });

  it('refuses an unsupported charset', async () => {
    const text = await body();
    await expectRefused(suite.svc, () => raw({ body: text, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-7' } }), { ...invalidRequest, reason: 'malformed_body' });
  });

  it('refuses malformed JSON without a stack trace', async () => {
    const { answer } = await expectRefused(suite.svc, () => raw({ body: '{"grant_type": ', headers: { 'content-type': 'application/json' } }), { ...invalidRequest, reason: 'malformed_body' });
    expect(JSON.stringify(answer.body)).not.toMatch(/at .*\.js|SyntaxError|node_modules/);
  });

  it('refuses a JSON scalar body', async () => {
    await expectRefused(suite.svc, () => raw({ body: '"hello"', headers: { 'content-type': 'application/json' } }), invalidRequest);
  });

  it('answers 413 to a form body over 32 KiB, even when it holds a genuine token', async () => {
    await expectRefused(suite.svc, form(await withToken({ ...TOKEN_EXCHANGE, scope: 's'.repeat(40 * 1024) })), { status: 413, error: 'invalid_request', reason: 'too_large' });
  });

  it('answers 413 to a JSON body over 32 KiB', async () => {
    await expectRefused(suite.svc, json({ ...(await withToken(TOKEN_EXCHANGE)), padding: 'p'.repeat(40 * 1024) }), { status: 413, error: 'invalid_request', reason: 'too_large' });
  });

  it('answers 413 to a small gzip body that inflates past the limit', async () => {
    const bomb = gzipSync(Buffer.from(`${new URLSearchParams(await withToken(TOKEN_EXCHANGE)).toString()}&x=${'a'.repeat(1024 * 1024)}`));
    expect(bomb.length).toBeLessThan(32 * 1024);
    await expectRefused(suite.svc, () => raw({ body: bomb, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' } }), {
      status: 413,
      error: 'invalid_request',
      reason: 'too_large',
    });
  });

  it('refuses an unknown content encoding', async () => {
    const text = await body();
    await expectRefused(suite.svc, () => raw({ body: text, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'x-evil' } }), invalidRequest);
  });
});

describe('a minted deploy token is not a subject token', () => {
  let minted: string;
  beforeAll(async () => {
    const { answer } = await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token()));
    minted = String(answer.body.access_token);
  });

  it('refuses it as an id_token', async () => {
    await expectRefused(suite.svc, form({ ...TOKEN_EXCHANGE, subject_token: minted, resource: 'site:docs' }), { ...invalidRequest, reason: 'bad_algorithm' });
  });

  it('refuses it as an access_token subject', async () => {
    await expectRefused(suite.svc, form({ ...TOKEN_EXCHANGE, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', subject_token: minted, resource: 'site:docs' }), invalidRequest);
  });

  it('refuses it for another site', async () => {
    await expectRefused(suite.svc, form({ ...TOKEN_EXCHANGE, subject_token: minted, resource: 'site:blog' }), invalidRequest);
  });
});

describe('every answer', () => {
  it('carries the security headers, is JSON, and names no framework — errors and unknown paths included', async () => {
    const answers = await Promise.all([
      fetch(`${suite.svc.url}/token`),
      fetch(`${suite.svc.url}/token`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }),
      fetch(`${suite.svc.url}/no-such-path/<script>`),
      fetch(`${suite.svc.url}/healthz`),
    ]);
    for (const res of answers) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.text()).not.toMatch(/<html|<pre|<script/i);
    }
  });

  it('of POST /token — granted, denied by the exchange, refused before it — has the same headers in the same order', async () => {
    // Raw header lines in order (fetch's Headers sorts them): a granted and a denied answer are written apart from
    // errors (http/app.ts `pending`), and must not differ from them by a header.
    const head = (fields: Record<string, string>) =>
      new Promise<{ status: number; names: string[]; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
        const body = new URLSearchParams(fields).toString();
        const req = http.request(`${suite.svc.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, names: res.rawHeaders.filter((_, i) => i % 2 === 0), headers: res.headers }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const granted = await head(await withToken(TOKEN_EXCHANGE));
    const denied = await head(await withToken({ ...TOKEN_EXCHANGE, resource: 'site:no-such-site' }));
    const refused = await head({ ...TOKEN_EXCHANGE, subject_token: 'x'.repeat(40_000) });
    expect([granted.status, denied.status, refused.status]).toEqual([200, 400, 413]);
    const expected = [
      'X-Request-Id', 'X-Content-Type-Options', 'Referrer-Policy', 'Content-Security-Policy', 'X-Frame-Options', 'Cross-Origin-Resource-Policy',
      'Cache-Control', 'Pragma', 'Content-Type', 'Content-Length', 'Date', 'Connection', 'Keep-Alive',
    ];
    for (const answer of [granted, denied, refused]) {
      expect(answer.names).toEqual(expected);
      expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.headers.pragma).toBe('no-cache');
      expect(answer.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    }
  });
});

describe('JSON bodies get the checks forms get', () => {
  const body = (text: string) => () => raw({ body: text, headers: { 'content-type': 'application/json' } });

  it('refuses a duplicated key (JSON.parse would silently keep the last)', async () => {
    const fields = await withToken(TOKEN_EXCHANGE);
    const text = `${JSON.stringify(fields).slice(0, -1)},"resource":"site:other"}`;
    await expectRefused(suite.svc, body(text), { ...invalidRequest, reason: 'duplicate_parameter', description: /^parameter "resource" must appear once/ });
  });

  it('refuses a key duplicated through escapes, even with the same value', async () => {
    const fields = await withToken(TOKEN_EXCHANGE);
    const text = `${JSON.stringify(fields).slice(0, -1)},"\\u0073cope":"deployments:write","scope":"deployments:write"}`;
    await expectRefused(suite.svc, body(text), { ...invalidRequest, reason: 'duplicate_parameter', description: /^parameter "scope" must appear once/ });
  });

  it('refuses more than 20 keys with 413', async () => {
    const fields: Record<string, string> = await withToken(TOKEN_EXCHANGE);
    for (let i = 0; i < 17; i++) fields[`x${i}`] = 'y'; // 21 keys
    await expectRefused(suite.svc, json(fields), { status: 413, error: 'invalid_request', reason: 'too_many_parameters' });
  });

  it('still grants a well-formed JSON body, nested objects with their own keys included', async () => {
    const fields = await withToken(TOKEN_EXCHANGE);
    await expectGranted(suite.svc, body(JSON.stringify(fields)));
  });
});
