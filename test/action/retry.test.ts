import { describe, expect, it } from 'vitest';
import { startDeadline } from '../../action/deadline.js';
import { backoffDelay, isRetryableStatus, parseRetryAfter, planRetry, DEFAULT_RETRY_POLICY } from '../../action/retry.js';

const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1_000, maxDelayMs: 8_000, retryAfterCapMs: 30_000 };

describe('backoff', () => {
  it('doubles per attempt, between half and all of the step', () => {
    for (const [attempt, step] of [[1, 1_000], [2, 2_000], [3, 4_000], [4, 8_000], [9, 8_000]] as const) {
      expect(backoffDelay(attempt, { ...policy, random: () => 0 })).toBe(step / 2);
      expect(backoffDelay(attempt, { ...policy, random: () => 0.999999 })).toBe(step);
    }
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2030-06-01T12:00:00Z');
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('Sat, 01 Jun 2030 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sat, 01 Jun 2030 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    for (const bad of [undefined, '', '-1', '1.5', 'soon']) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });
  const plenty = startDeadline(120_000, () => now);
  it('wins over backoff, up to the cap', () => {
    expect(planRetry(1, '5', { ...policy, now: () => now }, plenty)).toEqual({ retry: true, waitMs: 5_000 });
    expect(planRetry(1, 'soon', { ...policy, now: () => now, random: () => 0 }, plenty)).toEqual({ retry: true, waitMs: 500 });
  });
  it('beyond the cap ends the retries rather than retrying early', () => {
    expect(planRetry(1, '600', { ...policy, now: () => now }, plenty)).toEqual({ retry: false, gaveUp: { reason: 'retry-after', retryAfterMs: 600_000 } });
  });
  it('beyond the time left ends the retries too', () => {
    const tenSeconds = startDeadline(10_000, () => now);
    expect(planRetry(1, '10', { ...policy, now: () => now }, tenSeconds)).toEqual({ retry: false, gaveUp: { reason: 'retry-after', retryAfterMs: 10_000 } });
    expect(planRetry(1, '9', { ...policy, now: () => now }, tenSeconds)).toEqual({ retry: true, waitMs: 9_000 });
  });
});

describe('the overall deadline', () => {
  const now = Date.parse('2030-06-01T12:00:00Z');
  it('bounds backoff: a wait that would reach it ends the retries', () => {
    const p = { ...policy, now: () => now, random: () => 0.999999 };
    expect(planRetry(4, undefined, p, startDeadline(8_001, () => now))).toEqual({ retry: true, waitMs: 8_000 });
    expect(planRetry(4, undefined, p, startDeadline(8_000, () => now))).toEqual({ retry: false, gaveUp: { reason: 'deadline', deadlineMs: 8_000 } });
  });
});

describe('what is retried', () => {
  it('is 429 and 5xx, never another 4xx', () => {
    expect([429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 408, 409, 413, 422].some(isRetryableStatus)).toBe(false);
  });
});
