/**
 * The overall deadline of one step's talk with the service: metadata discovery, every OIDC token fetch, every
 * attempt and every wait between attempts share it, so a struggling service can hold a job for a bounded time
 * only. Waits and per-attempt timeouts are cut to what is left of it.
 */

/** How long the main step may spend talking to the service, all attempts and waits included. */
export const DEFAULT_DEADLINE_MS = 120_000;

export interface Deadline {
  /** The whole budget, for messages. */
  readonly totalMs: number;
  /** Milliseconds left; 0 or less once it has passed. */
  remaining(): number;
}

/** A deadline `totalMs` from now, read from `now` (injectable so tests can run a fake clock). */
export function startDeadline(totalMs: number = DEFAULT_DEADLINE_MS, now: () => number = Date.now): Deadline {
  const end = now() + totalMs;
  return { totalMs, remaining: () => end - now() };
}
