/**
 * Durations as policies write them: `90s`, `10m`, `1h`, or a plain number of seconds (`600` or "600").
 * One unit per value, lower case, whole numbers only.
 */

export type DurationResult = { ok: true; seconds: number } | { ok: false; message: string };

const UNIT_SECONDS = { s: 1, m: 60, h: 3600 } as const;
const DURATION = /^([0-9]{1,9})([smh]?)$/;
const EXAMPLES = 'write a whole number with a unit, e.g. 90s, 10m or 1h (or a plain number of seconds)';

export function parseDuration(input: unknown): DurationResult {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, message: `${input} is not a whole, non-negative number of seconds; ${EXAMPLES}` };
    }
    return { ok: true, seconds: input };
  }
  if (typeof input !== 'string') {
    return { ok: false, message: `a duration must be a string or a number; ${EXAMPLES}` };
  }
  const match = DURATION.exec(input);
  if (!match) {
    return { ok: false, message: `${JSON.stringify(input)} is not a duration; ${EXAMPLES}` };
  }
  const amount = Number(match[1]);
  const unit = (match[2] || 's') as keyof typeof UNIT_SECONDS;
  return { ok: true, seconds: amount * UNIT_SECONDS[unit] };
}

/** The shortest exact spelling: 3600 → `1h`, 600 → `10m`, 90 → `90s`. */
export function formatDuration(seconds: number): string {
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
