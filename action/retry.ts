/**
 * Retries of one logical request: on network errors, timeouts, 5xx and 429, with exponential backoff and
 * jitter, honouring `Retry-After` (seconds or an HTTP date, capped); never on any other 4xx. Each attempt is
 * prepared afresh (the token endpoint gets a new OIDC token every time: a subject token is accepted once).
 */
import { transportFailed } from './errors.js';
import { sendOnce, TransportError, type HttpAnswer, type HttpRequest, type Timeouts } from './http-transport.js';

export interface RetryPolicy {
  maxAttempts: number;
  /** The first backoff is between half of this and this. */
  baseDelayMs: number;
  /** Backoff never exceeds this. */
  maxDelayMs: number;
  /** A `Retry-After` longer than this is cut to this. */
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

/** The wait before the next attempt: the server's `Retry-After` (capped) when it gave one, else backoff. */
export function retryDelay(failedAttempt: number, retryAfter: string | string[] | undefined, policy: RetryPolicy): number {
  const asked = parseRetryAfter(retryAfter, policy.now());
  if (asked !== undefined) return Math.min(asked, policy.retryAfterCapMs);
  return backoffDelay(failedAttempt, policy);
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
}

export interface RetryRun<C> {
  /** Base URL for messages. */
  serviceUrl: string;
  prepare: (attempt: number) => Promise<PreparedAttempt<C>>;
  timeouts: Timeouts;
  policy: RetryPolicy;
  log: (line: string) => void;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))}s`;
}

/**
 * Sends until an answer that is not retryable, or attempts run out. Resolves with the last answer (which may be
 * a 5xx/429 when attempts ran out: the caller decides what that means); throws the ActionError of a transport
 * failure that was not retryable or was the last.
 */
export async function sendWithRetries<C>(run: RetryRun<C>): Promise<FinalAnswer<C>> {
  const { policy } = run;
  for (let attempt = 1; ; attempt++) {
    const { request, context } = await run.prepare(attempt);
    const startedAt = policy.now();
    let wait: number;
    let why: string;
    try {
      const answer = await sendOnce(request, run.timeouts);
      if (!isRetryableStatus(answer.status) || attempt >= policy.maxAttempts) {
        return { answer, attempts: attempt, context, startedAt };
      }
      wait = retryDelay(attempt, answer.headers['retry-after'], policy);
      why = `HTTP ${answer.status}`;
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      if (!error.retryable || attempt >= policy.maxAttempts) {
        throw transportFailed({ kind: error.kind, detail: error.detail, url: run.serviceUrl, attempts: attempt });
      }
      wait = backoffDelay(attempt, policy);
      why = error.detail;
    }
    run.log(`Attempt ${attempt} of ${policy.maxAttempts} to ${request.url} failed (${why}); retrying in ${seconds(wait)}.`);
    await policy.sleep(wait);
  }
}
