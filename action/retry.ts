/**
 * Retries of one logical request: on network errors, timeouts, 5xx and 429, with exponential backoff and
 * jitter, honouring `Retry-After` (seconds or an HTTP date); never on any other 4xx. Each attempt is prepared
 * afresh (the token endpoint gets a new OIDC token every time: a subject token is accepted once).
 *
 * Everything stays within the step's overall deadline: each attempt's timeouts are cut to the time left, a wait
 * that would pass the deadline ends the retries, and a `Retry-After` longer than the cap or than the time left
 * ends them too, rather than retrying early and spending a subject token on a service that asked for patience.
 */
import { badResponse, deadlinePassed, transportFailed, type GiveUp } from './errors.js';
import type { Deadline } from './deadline.js';
import { AnswerTooLarge, sendOnce, TransportError, type HttpAnswer, type HttpRequest, type Timeouts } from './http-transport.js';
import { seconds } from '../shared/text.js';

export interface RetryPolicy {
  maxAttempts: number;
  /** The first backoff is between half of this and this. */
  baseDelayMs: number;
  /** Backoff never exceeds this. */
  maxDelayMs: number;
  /** A `Retry-After` longer than this ends the retries (the step fails, saying when the service wants a retry). */
  retryAfterCapMs: number;
  /** In [0, 1); injectable for tests. */
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  retryAfterCapMs: 30_000,
  random: Math.random,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: Date.now,
};

/** "Equal jitter": after the n-th failed attempt, wait between half of and the whole of base·2^(n-1) (capped). */
export function backoffDelay(failedAttempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(ceiling / 2 + policy.random() * (ceiling / 2));
}

/** `Retry-After` in milliseconds from now: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP-date (IMF-fixdate, RFC 850 or asctime) starts with a day name; Date.parse alone accepts far too much.
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export type RetryPlan = { retry: true; waitMs: number } | { retry: false; gaveUp: GiveUp };

/**
 * What to do after a failed attempt that may be retried: wait as the server's `Retry-After` says, else back
 * off — unless that wait is longer than the policy allows or than the time left before the deadline.
 */
export function planRetry(failedAttempt: number, retryAfter: string | string[] | undefined, policy: RetryPolicy, deadline: Deadline): RetryPlan {
  const timeLeft = deadline.remaining();
  const asked = parseRetryAfter(retryAfter, policy.now());
  if (asked !== undefined) {
    if (asked > policy.retryAfterCapMs || asked >= timeLeft) return { retry: false, gaveUp: { reason: 'retry-after', retryAfterMs: asked } };
    return { retry: true, waitMs: asked };
  }
  const backoff = backoffDelay(failedAttempt, policy);
  if (backoff >= timeLeft) return { retry: false, gaveUp: { reason: 'deadline', deadlineMs: deadline.totalMs } };
  return { retry: true, waitMs: backoff };
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

export interface PreparedAttempt<C> {
  request: HttpRequest;
  /** Whatever the caller needs back about the attempt that produced the final answer. */
  context: C;
}

export interface FinalAnswer<C> {
  answer: HttpAnswer;
  attempts: number;
  context: C;
  /** When the answering attempt started (for expiry times computed conservatively). */
  startedAt: number;
  /** Set when a 5xx/429 ended the retries before the attempts ran out, and why. */
  gaveUp?: GiveUp;
}

export interface RetryRun<C> {
  /** Base URL for messages. */
  serviceUrl: string;
  prepare: (attempt: number) => Promise<PreparedAttempt<C>>;
  timeouts: Timeouts;
  policy: RetryPolicy;
  /** Shared with every other request of the step; attempts and waits never go past it. */
  deadline: Deadline;
  log: (line: string) => void;
}

/** The attempt's timeouts, cut to the time left before the deadline. */
function timeoutsWithin(timeouts: Timeouts, timeLeftMs: number): { timeouts: Timeouts; cut: boolean } {
  const cut = timeLeftMs < timeouts.totalMs || timeLeftMs < timeouts.connectMs;
  return { timeouts: { connectMs: Math.min(timeouts.connectMs, timeLeftMs), totalMs: Math.min(timeouts.totalMs, timeLeftMs) }, cut };
}

/**
 * Sends until an answer that is not retryable, or attempts (or time) run out. Resolves with the last answer
 * (which may be a 5xx/429 when the retries ended: the caller decides what that means, `gaveUp` says why they
 * ended early); throws the ActionError of a transport failure that was not retried, of an oversized answer,
 * or of the deadline passing.
 */
export async function sendWithRetries<C>(run: RetryRun<C>): Promise<FinalAnswer<C>> {
  const { policy, deadline } = run;
  for (let attempt = 1; ; attempt++) {
    if (deadline.remaining() <= 0) throw deadlinePassed(run.serviceUrl, deadline.totalMs, attempt - 1);
    const { request, context } = await run.prepare(attempt);
    const timeLeft = deadline.remaining();
    if (timeLeft <= 0) throw deadlinePassed(run.serviceUrl, deadline.totalMs, attempt - 1);
    const { timeouts, cut } = timeoutsWithin(run.timeouts, timeLeft);
    const startedAt = policy.now();
    let plan: RetryPlan;
    let why: string;
    try {
      const answer = await sendOnce(request, timeouts);
      if (!isRetryableStatus(answer.status) || attempt >= policy.maxAttempts) {
        return { answer, attempts: attempt, context, startedAt };
      }
      plan = planRetry(attempt, answer.headers['retry-after'], policy, deadline);
      if (!plan.retry) return { answer, attempts: attempt, context, startedAt, gaveUp: plan.gaveUp };
      why = `HTTP ${answer.status}`;
    } catch (error) {
      if (error instanceof AnswerTooLarge) throw badResponse(run.serviceUrl, error.message);
      if (!(error instanceof TransportError)) throw error;
      // A timeout cut short by the deadline is the deadline passing, not a slow service.
      if (error.kind === 'timeout' && cut) throw deadlinePassed(run.serviceUrl, deadline.totalMs, attempt);
      if (!error.retryable || attempt >= policy.maxAttempts) {
        throw transportFailed({ kind: error.kind, detail: error.detail, url: run.serviceUrl, attempts: attempt });
      }
      plan = planRetry(attempt, undefined, policy, deadline);
      if (!plan.retry) {
        const detail = `${error.detail}; the step's overall time limit of ${seconds(deadline.totalMs)} leaves no time for another attempt`;
        throw transportFailed({ kind: error.kind, detail, url: run.serviceUrl, attempts: attempt });
      }
      why = error.detail;
    }
    run.log(`Attempt ${attempt} of ${policy.maxAttempts} to ${request.url} failed (${why}); retrying in ${seconds(plan.waitMs)}.`);
    await policy.sleep(plan.waitMs);
  }
}
