/** Deciding whether two globs can match a common string: exact (a product-automaton search), never sampled. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, globIntersection } from '../../exchange-service/policy/glob.js';

const SLUG_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-';
const SLUG_FIRST = 'abcdefghijklmnopqrstuvwxyz0123456789';
const slugs = { alphabet: SLUG_CHARS, firstAlphabet: SLUG_FIRST, nonEmpty: true, maxLength: 63 };

/** Every string over `letters` of length at most n. */
function* strings(letters: string, n: number): Generator<string> {
  let level = [''];
  yield '';
  for (let k = 1; k <= n; k++) {
    const next: string[] = [];
    for (const s of level) for (const c of letters) next.push(s + c);
    for (const s of next) yield s;
    level = next;
  }
}

const literalCount = (p: string) => p.replaceAll('*', '').length;

describe('glob intersection', () => {
  it('finds a shortest common string, or none', () => {
    expect(globIntersection('app-*', '*-web')).toBe('app-web');
    expect(globIntersection('*', 'docs')).toBe('docs');
    expect(globIntersection('app-*', 'web-*')).toBeUndefined();
    expect(globIntersection('a*', '*b')).toBe('ab');
    expect(globIntersection('*', '*')).toBe('');
  });

  it('respects / : * never crosses it, ** does', () => {
    expect(globIntersection('refs/heads/*', 'refs/*/main')).toBe('refs/heads/main');
    expect(globIntersection('a/*', 'a/b/c')).toBeUndefined();
    expect(globIntersection('a/**', 'a/b/c')).toBe('a/b/c');
    expect(globIntersection('*', '**/**')).toBeUndefined();
    expect(globIntersection('*/*', '**')).toBe('/');
  });

  it('within the slug language: a first letter or digit, at most 63 characters', () => {
    expect(globIntersection('-*', '*', slugs)).toBeUndefined();
    expect(globIntersection('*', '*', slugs)).toMatch(/^[a-z0-9]$/);
    const long = 'a'.repeat(40);
    expect(globIntersection(`${long}*`, `*b${long}`, slugs)).toBeUndefined(); // needs 81 characters
    expect(globIntersection(`${long}*`, `*b${'a'.repeat(20)}`, slugs)).toBe(`${long}b${'a'.repeat(20)}`);
  });

  describe('properties (against brute force on a small alphabet)', () => {
    const pattern = fc
      .array(fc.constantFrom('a', '/', '*'), { maxLength: 6 })
      .map((cs) => cs.join('').replace(/\*{3,}/g, '**'))
      .filter((p) => literalCount(p) <= 4);

    it('agrees with enumerating every string up to the length a shortest witness can have', () => {
      // A letter of a shortest witness that both automata read on a wildcard loop can be dropped, so each letter
      // consumes a literal of a pattern: a shortest witness is at most literals(a) + literals(b) long.
      fc.assert(
        fc.property(pattern, pattern, (a, b) => {
          const ga = compileGlob(a.length === 0 ? 'x' : a);
          const gb = compileGlob(b.length === 0 ? 'x' : b);
          if (a.length === 0 || b.length === 0) return;
          const found = globIntersection(a, b);
          let brute: string | undefined;
          for (const s of strings('a/x', literalCount(a) + literalCount(b))) {
            if (ga.test(s) && gb.test(s)) {
              brute = s;
              break;
            }
          }
          expect(found === undefined).toBe(brute === undefined);
          if (found !== undefined) {
            expect(ga.test(found) && gb.test(found)).toBe(true);
            expect(found.length).toBe(brute!.length);
          }
        }),
        { numRuns: 1500 },
      );
    });

    it('agrees with brute force within a restricted alphabet, first letter and length', () => {
      const p = fc
        .array(fc.constantFrom('a', '-', '*'), { minLength: 1, maxLength: 5 })
        .map((cs) => cs.join('').replace(/\*{3,}/g, '**'));
      fc.assert(
        fc.property(p, p, fc.integer({ min: 0, max: 6 }), (a, b, maxLength) => {
          const ga = compileGlob(a);
          const gb = compileGlob(b);
          const found = globIntersection(a, b, { alphabet: 'a-', firstAlphabet: 'a', maxLength });
          let brute: string | undefined;
          for (const s of strings('a-', maxLength)) {
            if ((s === '' || s[0] === 'a') && ga.test(s) && gb.test(s)) {
              brute = s;
              break;
            }
          }
          expect(found === undefined).toBe(brute === undefined);
          if (found !== undefined) expect(ga.test(found) && gb.test(found) && found.length <= maxLength).toBe(true);
        }),
        { numRuns: 1500 },
      );
    });
  });
});
