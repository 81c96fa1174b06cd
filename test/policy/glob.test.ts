import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GlobError, MAX_GLOB_LENGTH, MAX_GLOB_VALUE_LENGTH, compileGlob, globProblem } from '../../exchange-service/policy/glob.js';

const matches = (pattern: string, value: string, caseInsensitive = false) => compileGlob(pattern, { caseInsensitive }).test(value);

describe('policy globs', () => {
  describe('literal patterns', () => {
    it('match exactly the same string, anchored at both ends', () => {
      expect(matches('refs/heads/main', 'refs/heads/main')).toBe(true);
      expect(matches('refs/heads/main', 'refs/heads/main-evil')).toBe(false);
      expect(matches('refs/heads/main', 'xrefs/heads/main')).toBe(false);
      expect(matches('refs/heads/main', 'refs/heads/mai')).toBe(false);
      expect(matches('refs/heads/main', '')).toBe(false);
    });

    it('are flagged literal', () => {
      expect(compileGlob('push').literal).toBe(true);
      expect(compileGlob('pu*').literal).toBe(false);
    });
  });

  describe('* (one path segment)', () => {
    it('matches any run of characters within a segment', () => {
      expect(matches('refs/heads/*', 'refs/heads/feature')).toBe(true);
      expect(matches('refs/heads/release-*', 'refs/heads/release-1.2')).toBe(true);
      expect(matches('*-docs', 'team-docs')).toBe(true);
    });

    it('never crosses a /', () => {
      expect(matches('refs/heads/*', 'refs/heads/feature/x')).toBe(false);
      expect(matches('acme/*/deploy.yml', 'acme/docs/evil/deploy.yml')).toBe(false);
      expect(matches('*', 'a/b')).toBe(false);
    });

    it('matches the empty run, so empty segments are matched too', () => {
      expect(matches('refs/heads/*', 'refs/heads/')).toBe(true);
      expect(matches('a/*/b', 'a//b')).toBe(true);
      expect(matches('a//b', 'a//b')).toBe(true);
      expect(matches('a//b', 'a/b')).toBe(false);
    });
  });

  describe('** (across segments)', () => {
    it('matches any run of characters, / included', () => {
      expect(matches('refs/heads/**', 'refs/heads/feature/x/y')).toBe(true);
      expect(matches('refs/**/main', 'refs/heads/main')).toBe(true);
      expect(matches('refs/**/main', 'refs/heads/a/b/main')).toBe(true);
      expect(matches('**', '')).toBe(true);
      expect(matches('**', 'anything/at/all')).toBe(true);
    });

    it('still anchors the literal parts', () => {
      expect(matches('refs/**/main', 'refs/heads/main-evil')).toBe(false);
      expect(matches('refs/tags/**', 'refs/heads/refs/tags/v1')).toBe(false);
    });
  });

  describe('.. and other path-looking input', () => {
    it('is plain characters: no path normalisation happens', () => {
      expect(matches('refs/heads/main', 'refs/heads/../heads/main')).toBe(false);
      expect(matches('refs/heads/*', 'refs/heads/..')).toBe(true);
      expect(matches('acme/docs/*', 'acme/docs/../evil')).toBe(false);
    });
  });

  describe('regex metacharacters', () => {
    it('are literal', () => {
      expect(matches('v1.0', 'v1.0')).toBe(true);
      expect(matches('v1.0', 'v1x0')).toBe(false);
      expect(matches('a+b', 'aab')).toBe(false);
      expect(matches('a+b', 'a+b')).toBe(true);
      expect(matches('(main|evil)', 'main')).toBe(false);
      expect(matches('(main|evil)', '(main|evil)')).toBe(true);
      expect(matches('[abc]', 'a')).toBe(false);
      expect(matches('ma?n', 'main')).toBe(false);
      expect(matches('^main$', 'main')).toBe(false);
      expect(matches('\\d', '1')).toBe(false);
      expect(matches('\\d', '\\d')).toBe(true);
      expect(matches('$&*', '$&anything')).toBe(true);
    });
  });

  describe('case', () => {
    it('is significant by default', () => {
      expect(matches('refs/heads/main', 'refs/heads/Main')).toBe(false);
    });

    it('folds ASCII letters when case-insensitive, on both sides', () => {
      expect(matches('Production', 'pRODUCTION', true)).toBe(true);
      expect(matches('prod-*', 'PROD-EU', true)).toBe(true);
    });

    it('does not apply Unicode folding (the Kelvin sign is not k)', () => {
      expect(matches('keys', '\u212Aeys', true)).toBe(false);
    });
  });

  describe('malformed patterns', () => {
    it.each([
      ['', 'may not be empty'],
      ['***', '"***" is not a wildcard'],
      ['refs/****', '"****" is not a wildcard'],
      ['a\nb', 'control characters'],
      ['x'.repeat(MAX_GLOB_LENGTH + 1), `at most ${MAX_GLOB_LENGTH}`],
    ])('refuses %j with a message', (pattern, message) => {
      expect(globProblem(pattern)).toContain(message);
      expect(() => compileGlob(pattern)).toThrow(GlobError);
    });

    it('refuses a non-string', () => {
      expect(globProblem(42)).toBe('a pattern must be a string');
    });

    it('accepts a pattern of the maximum length', () => {
      expect(globProblem('x'.repeat(MAX_GLOB_LENGTH))).toBeUndefined();
    });
  });

  describe('hostile input', () => {
    it('decides many-wildcard patterns against long near-misses without backtracking', () => {
      const glob = compileGlob(`${'*a'.repeat(40)}*b`);
      expect(glob.test('a'.repeat(MAX_GLOB_VALUE_LENGTH))).toBe(false);
      expect(glob.test(`${'a'.repeat(5000)}b`)).toBe(true);
      const deep = compileGlob(`${'**/'.repeat(40)}x`);
      expect(deep.test('/'.repeat(MAX_GLOB_VALUE_LENGTH))).toBe(false);
    });

    it('never matches a wildcard pattern against an over-long value', () => {
      expect(compileGlob('**').test('a'.repeat(MAX_GLOB_VALUE_LENGTH + 1))).toBe(false);
    });
  });

  describe('properties', () => {
    const alphabet = fc.constantFrom('a', 'B', '/', '.', '*', '-');
    const pattern = fc
      .array(alphabet, { minLength: 1, maxLength: 12 })
      .map((cs) => cs.join(''))
      .filter((p) => globProblem(p) === undefined);
    const value = fc.array(fc.constantFrom('a', 'b', 'B', '/', '.', '-'), { maxLength: 14 }).map((cs) => cs.join(''));

    /** An independent oracle: the obvious regex translation (safe here: inputs are tiny). */
    function oracle(p: string, v: string): boolean {
      const source = p
        .split(/(\*\*|\*)/)
        .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')))
        .join('');
      return new RegExp(`^${source}$`, 's').test(v);
    }

    it('agrees with a regex oracle on every pattern and value', () => {
      fc.assert(fc.property(pattern, value, (p, v) => compileGlob(p).test(v) === oracle(p, v)), { numRuns: 2000 });
    });

    it('never throws, whatever the value', () => {
      fc.assert(fc.property(pattern, fc.string({ maxLength: 64 }), (p, v) => typeof compileGlob(p).test(v) === 'boolean'));
    });

    it('a literal pattern matches only itself', () => {
      fc.assert(
        fc.property(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => globProblem(s) === undefined && !s.includes('*')), fc.string(), (p, v) => {
          expect(compileGlob(p).test(v)).toBe(p === v);
        }),
      );
    });
  });
});
