/**
 * Property-based tests of request parsing (fast-check): whatever the body, `parseTokenRequest` either returns a
 * request in which every required condition holds, or throws an OAuthError — never anything else; and the HTTP
 * endpoint answers any body with an RFC 6749 JSON error (never a 5xx, never a stack), one audit record each, and a
 * token only for a request the parser accepts. (Matcher and glob properties live in test/policy.)
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuthError } from '../../exchange-service/errors.js';
import { ACCESS_TOKEN_TYPE, GRANT_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE } from '../../shared/wire.js';
import { parseTokenRequest } from '../../exchange-service/token-exchange/request.js';
import { auditAfter, lastAuditId, startSuite, type Suite } from './support.js';

const FIELDS = ['grant_type', 'subject_token', 'subject_token_type', 'resource', 'audience', 'scope', 'requested_token_type'] as const;
const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PARSE_CODES = ['invalid_request', 'invalid_target', 'unsupported_grant_type'];

/** Values close to valid ones for each field, plus arbitrary strings, arrays and JSON. */
const fieldValue = (name: (typeof FIELDS)[number]) => {
  const near: Record<(typeof FIELDS)[number], string[]> = {
    grant_type: [GRANT_TYPE, GRANT_TYPE.toUpperCase(), `${GRANT_TYPE} `, 'client_credentials', ''],
    subject_token: ['eyJhbGciOiJSUzI1NiJ9.e30.sig', 'x', ''],
    subject_token_type: [ID_TOKEN_TYPE, JWT_TOKEN_TYPE, ACCESS_TOKEN_TYPE, `${ID_TOKEN_TYPE}x`, ''],
    resource: ['site:docs', 'site:Docs', 'site:', 'site:a/b', 'site:-x', `site:${'a'.repeat(64)}`, 'docs', 'https://evil', ''],
    audience: ['site:docs', 'site:blog', 'site:', ''],
    scope: ['deployments:write', 'deployments:read sites:read', '  ', ''],
    requested_token_type: [ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, ''],
  };
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...near[name]) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...near[name]), { minLength: 0, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
};

/** A body with each field present or absent, and a few unrelated keys (prototype names included). */
const tokenRequestBody = fc
  .tuple(
    fc.record(Object.fromEntries(FIELDS.map((f) => [f, fieldValue(f)])) as Record<(typeof FIELDS)[number], fc.Arbitrary<unknown>>, { requiredKeys: [] }),
    fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'toString', 'client_id', 'context', 'x'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
  )
  .map(([fields, extra]) => ({ ...extra, ...fields }));

/** The independent oracle: may this body parse? */
function acceptable(body: Record<string, unknown>): boolean {
  const own = (k: string) => (Object.prototype.hasOwnProperty.call(body, k) ? body[k] : undefined);
  for (const f of FIELDS) if (own(f) !== undefined && typeof own(f) !== 'string') return false;
  if (own('grant_type') !== GRANT_TYPE) return false;
  if (typeof own('subject_token') !== 'string' || own('subject_token') === '') return false;
  if (own('subject_token_type') !== ID_TOKEN_TYPE && own('subject_token_type') !== JWT_TOKEN_TYPE) return false;
  if (own('requested_token_type') !== undefined && own('requested_token_type') !== ACCESS_TOKEN_TYPE) return false;
  const resource = own('resource') as string | undefined;
  const audience = own('audience') as string | undefined;
  if (resource !== undefined && audience !== undefined && resource !== audience) return false;
  const target = resource ?? audience;
  return target !== undefined && target.startsWith('site:') && SLUG.test(target.slice(5));
}

function parseOutcome(body: unknown): { ok: true; value: ReturnType<typeof parseTokenRequest> } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: parseTokenRequest(body) };
  } catch (error) {
    return { ok: false, error };
  }
}

describe('parseTokenRequest', () => {
  it('never throws anything but an OAuthError, for any value at all', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withBoxedValues: true }), (body) => {
        const outcome = parseOutcome(body);
        if (!outcome.ok) {
          expect(outcome.error).toBeInstanceOf(OAuthError);
          expect(PARSE_CODES).toContain((outcome.error as OAuthError).code);
          expect((outcome.error as OAuthError).status).toBe(400);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('accepts a body exactly when every required condition holds, and returns what was asked', () => {
    fc.assert(
      fc.property(tokenRequestBody, (body) => {
        const outcome = parseOutcome(body);
        expect(outcome.ok).toBe(acceptable(body));
        if (outcome.ok) {
          const target = (body.resource ?? body.audience) as string;
          expect(outcome.value.site).toBe(target.slice(5));
          expect(outcome.value.subjectToken).toBe(body.subject_token);
          expect(outcome.value.scope).toBe(typeof body.scope === 'string' && body.scope.trim() !== '' ? body.scope.trim() : undefined);
        } else {
          expect(outcome.error).toBeInstanceOf(OAuthError);
          expect(PARSE_CODES).toContain((outcome.error as OAuthError).code);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses a valid request as soon as any one required field is broken', () => {
    const valid = { grant_type: GRANT_TYPE, subject_token: 't', subject_token_type: ID_TOKEN_TYPE, resource: 'site:docs' };
    const broken = fc.oneof(fc.constant(undefined), fc.string({ unit: 'binary', maxLength: 40 }), fc.array(fc.string(), { minLength: 1, maxLength: 2 }), fc.integer());
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(valid) as (keyof typeof valid)[])), broken, (field, value) => {
        const body: Record<string, unknown> = { ...valid, [field]: value };
        fc.pre(!acceptable(body));
        const outcome = parseOutcome(body);
        expect(outcome.ok).toBe(false);
        expect(outcome.ok ? undefined : outcome.error).toBeInstanceOf(OAuthError);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('POST /token with arbitrary bodies', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite();
  });
  afterAll(async () => {
    await suite?.stop();
  });

  const formBody = fc.array(
    fc.tuple(fc.oneof(fc.constantFrom(...FIELDS, '__proto__', 'a[b]', 'grant_type[]'), fc.string({ maxLength: 12 })), fc.oneof(fc.constantFrom(GRANT_TYPE, ID_TOKEN_TYPE, 'site:docs', 'GENUINE'), fc.string({ unit: 'binary', maxLength: 60 }))),
    { maxLength: 10 },
  );

  it('answers every form body with a JSON RFC 6749 answer, one audit record, and a token only for a parseable request', async () => {
    await fc.assert(
      fc.asyncProperty(formBody, async (pairs) => {
        const genuine = await suite.issuer.token();
        const params = new URLSearchParams();
        for (const [k, v] of pairs) params.append(k, v === 'GENUINE' ? genuine : v);
        const before = await lastAuditId(suite.svc);
        const response = await fetch(`${suite.svc.url}/token`, { method: 'POST', body: params, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        const text = await response.text();
        expect(response.headers.get('content-type')).toMatch(/^application\/json/);
        const body = JSON.parse(text) as Record<string, unknown>;
        expect(response.status).toBeLessThan(500);
        expect(text).not.toMatch(/\n\s+at |node_modules/);
        if (response.status === 200) {
          const parsed = Object.fromEntries([...params.keys()].map((k) => [k, params.getAll(k).length > 1 ? params.getAll(k) : params.get(k)]));
          expect(acceptable(parsed)).toBe(true);
          expect(typeof body.access_token).toBe('string');
        } else {
          expect([400, 413]).toContain(response.status);
          expect(['invalid_request', 'invalid_target', 'invalid_scope', 'unsupported_grant_type']).toContain(body.error);
          expect(body).not.toHaveProperty('access_token');
        }
        expect(await auditAfter(suite.svc, before)).toHaveLength(1);
      }),
      { numRuns: 100 },
    );
  });

  it('answers every JSON body likewise', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(tokenRequestBody, fc.jsonValue({ maxDepth: 3 })), async (value) => {
        const before = await lastAuditId(suite.svc);
        const response = await fetch(`${suite.svc.url}/token`, { method: 'POST', body: JSON.stringify(value) ?? 'null', headers: { 'content-type': 'application/json' } });
        const body = (await response.json()) as Record<string, unknown>;
        expect([400, 413]).toContain(response.status);
        expect(body).not.toHaveProperty('access_token');
        expect(typeof body.error).toBe('string');
        expect(await auditAfter(suite.svc, before)).toHaveLength(1);
      }),
      { numRuns: 80 },
    );
  });
});
