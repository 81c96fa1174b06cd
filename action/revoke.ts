/**
 * RFC 7009 revocation of the deploy token when the job ends, best-effort: a failure is reported, never thrown.
 * The service authenticates the request with the token itself (`Authorization: Bearer`).
 */
import { startDeadline, type Deadline } from './deadline.js';
import { ActionError } from './errors.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from './http-transport.js';
import { DEFAULT_RETRY_POLICY, sendWithRetries, type RetryPolicy } from './retry.js';
import { displayUrl, endpoint } from './url.js';

export type RevokeOutcome = { revoked: true } | { revoked: false; reason: string };

export interface RevokeOptions {
  timeouts?: Timeouts;
  retry?: Partial<RetryPolicy>;
  /** Default: a fresh overall deadline. */
  deadline?: Deadline;
  log?: (line: string) => void;
}

export async function revokeToken(url: URL, token: string, options: RevokeOptions = {}): Promise<RevokeOutcome> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 3, ...options.retry };
  try {
    const { answer } = await sendWithRetries<null>({
      serviceUrl: displayUrl(url),
      timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
      policy,
      deadline: options.deadline ?? startDeadline(undefined, policy.now),
      log: options.log ?? (() => {}),
      prepare: async () => ({
        context: null,
        request: {
          method: 'POST',
          url: endpoint(url, 'revoke'),
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Bearer ${token}`,
          },
          body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        },
      }),
    });
    if (answer.status === 200) return { revoked: true };
    return { revoked: false, reason: `the service answered HTTP ${answer.status} at ${endpoint(url, 'revoke')}` };
  } catch (error) {
    return { revoked: false, reason: error instanceof ActionError ? error.problem : String(error) };
  }
}
