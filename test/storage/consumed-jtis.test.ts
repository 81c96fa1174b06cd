/**
 * The SQLite storage's replay check in memory (storage/consumed-jtis.ts): a jti is first once per issuer and expiry,
 * and pruning forgets exactly the expiries before the given second.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consumedJtis } from '../../exchange-service/storage/consumed-jtis.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const EXP = 1_900_000_000;

describe('the jtis consumed in memory', () => {
  it('takes a jti once, and refuses it every time after', () => {
    const consumed = consumedJtis();
    expect(consumed.consume(ISSUER, 'a', EXP)).toBe(true);
    expect(consumed.consume(ISSUER, 'a', EXP)).toBe(false);
    expect(consumed.consume(ISSUER, 'a', EXP)).toBe(false);
    expect(consumed.size).toBe(1);
  });

  it('keeps issuers apart, and a jti under another expiry apart (a token is its issuer, jti and exp)', () => {
    const consumed = consumedJtis();
    expect(consumed.consume(ISSUER, 'a', EXP)).toBe(true);
    expect(consumed.consume('https://other.test', 'a', EXP)).toBe(true);
    expect(consumed.consume(ISSUER, 'a', EXP + 1)).toBe(true);
    // No joined key: an issuer ending in what another jti begins with is still another token.
    expect(consumed.consume('https://x.test a', 'b', EXP)).toBe(true);
    expect(consumed.consume('https://x.test', 'a b', EXP)).toBe(true);
    expect(consumed.size).toBe(5);
  });

  it('keys a jti as SQLite stores it (UTF-8: a lone surrogate is U+FFFD), so the row read back at start matches', () => {
    const consumed = consumedJtis();
    expect(consumed.consume(ISSUER, '\ud800-x', EXP)).toBe(true);
    expect(consumed.consume(ISSUER, '\ufffd-x', EXP)).toBe(false);
    expect(consumed.consume(ISSUER, '\udfff-x', EXP)).toBe(false);
    expect(consumed.consume(ISSUER, '\ud83d\ude00-x', EXP)).toBe(true); // a well-formed pair is its own character
  });

  it('forgets only the expiries before the second it is given, and says how many', () => {
    const consumed = consumedJtis();
    for (const [jti, exp] of [['old-1', EXP - 2], ['old-2', EXP - 1], ['edge', EXP], ['live', EXP + 1]] as const) consumed.consume(ISSUER, jti, exp);
    expect(consumed.prune(EXP)).toBe(2);
    expect(consumed.size).toBe(2);
    expect(consumed.consume(ISSUER, 'edge', EXP)).toBe(false);
    expect(consumed.consume(ISSUER, 'live', EXP + 1)).toBe(false);
    expect(consumed.consume(ISSUER, 'old-1', EXP - 2)).toBe(true);
    expect(consumed.prune(EXP)).toBe(1);
  });

  it('answers as a set of (issuer, jti, exp) triples would, whatever the uses and prunes', () => {
    const use = fc.record({ issuer: fc.constantFrom(ISSUER, 'https://b.test', 'https://b.test '), jti: fc.string({ maxLength: 3 }), exp: fc.integer({ min: EXP, max: EXP + 5 }) });
    const step = fc.oneof(use.map((u) => ({ kind: 'use' as const, ...u })), fc.integer({ min: EXP, max: EXP + 6 }).map((now) => ({ kind: 'prune' as const, now })));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const consumed = consumedJtis();
        const model = new Map<string, number>();
        for (const s of steps) {
          if (s.kind === 'use') {
            const key = JSON.stringify([s.issuer, s.jti, s.exp]);
            expect(consumed.consume(s.issuer, s.jti, s.exp)).toBe(!model.has(key));
            model.set(key, s.exp);
          } else {
            const before = model.size;
            for (const [key, exp] of model) if (exp < s.now) model.delete(key);
            expect(consumed.prune(s.now)).toBe(before - model.size);
          }
          expect(consumed.size).toBe(model.size);
        }
      }),
    );
  });
});
