/**
 * The claim check's fast path (`fitsGitHubClaims`) never accepts a claim set the schema (`githubClaimsSchema`)
 * refuses, and it accepts the claim sets GitHub sends, so the schema only runs to explain a refusal.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fitsGitHubClaims, githubClaimsSchema } from '../../exchange-service/oidc/claims.js';
import { githubShapedClaims } from '../../exchange-service/dev-issuer.js';

const now = Math.floor(Date.now() / 1000);
const valid = (): Record<string, unknown> => ({ ...githubShapedClaims('https://token.actions.githubusercontent.com', 'https://deploy-sts.example', {}, now), jti: 'b1a2c3d4-0000-4000-8000-000000000001' });

/** A value of any JSON shape, with strings around the schema's length limits. */
const anyValue = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.constantFrom('', 'x'.repeat(256), 'x'.repeat(257), 'x'.repeat(1024), 'x'.repeat(1025), '12345', '0'.repeat(21), '-1', '1.5'),
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, Number.NaN, null, true),
  fc.array(fc.string({ maxLength: 2 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
);
const names = fc.oneof(fc.constantFrom(...Object.keys(githubClaimsSchema.shape)), fc.constantFrom('repo_property_tier', '__proto__', 'extra'), fc.string({ maxLength: 6 }));

describe('the claim check fast path', () => {
  it('accepts the claim sets GitHub sends, as the schema does', () => {
    expect(fitsGitHubClaims(valid())).toBe(true);
    expect(githubClaimsSchema.safeParse(valid()).success).toBe(true);
  });

  it('never accepts what the schema refuses: every claim removed, or set to each value around its limits', () => {
    const edges: unknown[] = ['', 'x', 'x'.repeat(256), 'x'.repeat(257), 'x'.repeat(1024), 'x'.repeat(1025), '12345', '1'.repeat(20), '1'.repeat(21), '-1', '1.5', ' 1',
      0, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, null, true, [], ['a'], {}, { a: 'b' }];
    let accepted = 0;
    for (const name of [...Object.keys(githubClaimsSchema.shape), 'repo_property_tier', 'extra', '__proto__']) {
      for (const value of [undefined, ...edges]) {
        const claims = valid();
        if (value === undefined) delete claims[name];
        else Object.defineProperty(claims, name, { value, enumerable: true, writable: true, configurable: true });
        const payload = JSON.parse(JSON.stringify(claims)) as Record<string, unknown>;
        const fits = fitsGitHubClaims(payload);
        if (fits) accepted++;
        expect({ name, value, schema: fits && githubClaimsSchema.safeParse(payload).success }).toEqual({ name, value, schema: fits });
      }
    }
    expect(accepted).toBeGreaterThan(100); // the fast path is taken for most legitimate variations
  });

  it('never accepts what the schema refuses: several claims changed, removed or added at random', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(names, fc.option(anyValue, { nil: undefined })), { minLength: 1, maxLength: 4 }), (edits) => {
        const claims = valid();
        for (const [name, value] of edits) {
          if (value === undefined) delete claims[name];
          else Object.defineProperty(claims, name, { value, enumerable: true, writable: true, configurable: true });
        }
        // Through JSON, as a token's payload arrives.
        const payload = JSON.parse(JSON.stringify(claims)) as Record<string, unknown>;
        if (fitsGitHubClaims(payload)) expect(githubClaimsSchema.safeParse(payload).success).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
