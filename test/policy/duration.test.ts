import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../exchange-service/policy/duration.js';

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['10m', 600],
    ['1h', 3600],
    ['600', 600],
    [600, 600],
    ['0s', 0],
  ])('reads %j as %i seconds', (input, seconds) => {
    expect(parseDuration(input)).toEqual({ ok: true, seconds });
  });

  it.each(['1.5h', '10M', '1d', ' 10m', '10m ', '', '-5s', 'm', '10m30s', '1e3', '9999999999s'])('refuses %j and says how to write one', (input) => {
    const result = parseDuration(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('e.g. 90s, 10m or 1h');
  });

  it.each([1.5, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses the number %d', (input) => {
    expect(parseDuration(input).ok).toBe(false);
  });

  it('refuses values that are neither strings nor numbers', () => {
    expect(parseDuration(null)).toEqual({ ok: false, message: expect.stringContaining('must be a string or a number') });
    expect(parseDuration(['10m']).ok).toBe(false);
  });

  it('formats seconds in the largest exact unit', () => {
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(600)).toBe('10m');
    expect(formatDuration(90)).toBe('90s');
    expect(formatDuration(0)).toBe('0s');
  });
});
