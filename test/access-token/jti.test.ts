import { describe, expect, it } from 'vitest';
import { timeOrderedId } from '../../exchange-service/access-token/jti.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the jti of a minted token', () => {
  it('is a UUID version 7 (RFC 9562) whose first 48 bits are the minting time in ms', () => {
    const at = Date.UTC(2026, 10, 30, 1, 2, 3, 456);
    const jti = timeOrderedId(at);
    expect(jti).toMatch(UUID_V7);
    expect(parseInt(jti.replaceAll('-', '').slice(0, 12), 16)).toBe(at);
    const now = Date.now();
    const fresh = parseInt(timeOrderedId().replaceAll('-', '').slice(0, 12), 16);
    expect(Math.abs(fresh - now)).toBeLessThan(5_000);
  });

  it('sorts by minting time: ids of a later millisecond sort after every id of an earlier one', () => {
    const earlier = Array.from({ length: 200 }, () => timeOrderedId(1_800_000_000_000));
    const later = Array.from({ length: 200 }, () => timeOrderedId(1_800_000_000_001));
    expect(earlier.every((a) => later.every((b) => a < b))).toBe(true);
  });

  it('is unguessable: 74 random bits, never repeated across 20,000 ids of one millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => timeOrderedId(1_800_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    for (const jti of ids.slice(0, 1000)) expect(jti).toMatch(UUID_V7);
    // Every random hex digit takes many values (the pool of random bytes is refilled, never reused).
    const digits = ids.map((jti) => jti.replaceAll('-', '').slice(13)); // after the time and the version digit
    for (let position = 0; position < digits[0]!.length; position++) {
      if (position === 3) continue; // the variant digit: 8, 9, a or b
      expect(new Set(digits.slice(0, 2000).map((d) => d[position])).size).toBe(16);
    }
  });
});
