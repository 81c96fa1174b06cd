/**
 * The service's RFC 8414 metadata, read only for the audience it expects on GitHub OIDC tokens
 * (`subject_token_audience`, a deploy-sts extension). Without that field (or metadata) the audience is the URL.
 *
 * The advertised audience is trusted only when it names the service itself: an https:// URL (http:// on
 * loopback) on the same host name as `url`. Anything else — another host, a bare word, control characters —
 * could make the job hand the service a GitHub token minted for some other relying party, so it is ignored
 * (with the reason) and the audience is the URL.
 */
import { z } from 'zod';
import { startDeadline, type Deadline } from './deadline.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from './http-transport.js';
import { serviceUnavailable } from './errors.js';
import { hasControlCharacters } from './printable.js';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, sendWithRetries, type RetryPolicy } from './retry.js';
import { displayUrl, endpoint, isLoopbackHost } from './url.js';

export const METADATA_PATH = '.well-known/oauth-authorization-server';

const Metadata = z.object({ subject_token_audience: z.string().min(1) });

export interface AudienceChoice {
  audience: string;
  /** Where it came from, for the log. */
  source: 'metadata' | 'url';
  /** The advertised audience that was not used, and why (for a warning). */
  ignored?: { advertised: string; reason: string };
}

export interface DiscoverOptions {
  timeouts?: Timeouts;
  retry?: Partial<RetryPolicy>;
  /** The step's overall deadline, shared with the exchange; default: a fresh one. */
  deadline?: Deadline;
  log?: (line: string) => void;
}

/** Why `advertised` cannot be used as the audience for the service at `url`; undefined when it can. */
export function audienceProblem(advertised: string, url: URL): string | undefined {
  if (hasControlCharacters(advertised)) return 'it contains control characters';
  let parsed: URL;
  try {
    parsed = new URL(advertised);
  } catch {
    return 'it is not a URL';
  }
  const loopbackHttp = parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname);
  if (parsed.protocol !== 'https:' && !loopbackHttp) return 'it is not an https:// URL';
  if (parsed.username !== '' || parsed.password !== '') return 'it contains credentials';
  if (parsed.hostname.toLowerCase() !== url.hostname.toLowerCase()) {
    return `its host ${parsed.hostname} is not the service's host ${url.hostname}`;
  }
  return undefined;
}

/**
 * The advertised audience, else the service URL. Network failures and 5xx (after retries) throw: guessing an
 * audience while the service is down would only turn an outage into a confusing audience error.
 */
export async function discoverAudience(url: URL, options: DiscoverOptions = {}): Promise<AudienceChoice> {
  const base = displayUrl(url);
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const { answer, attempts, gaveUp } = await sendWithRetries<null>({
    serviceUrl: base,
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    policy,
    deadline: options.deadline ?? startDeadline(undefined, policy.now),
    log: options.log ?? (() => {}),
    prepare: async () => ({ context: null, request: { method: 'GET', url: endpoint(url, METADATA_PATH), headers: { accept: 'application/json' } } }),
  });
  if (isRetryableStatus(answer.status)) throw serviceUnavailable({ status: answer.status, url: base, attempts, gaveUp });
  if (answer.status === 200) {
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch {
      json = undefined;
    }
    const parsed = Metadata.safeParse(json);
    if (parsed.success) {
      const advertised = parsed.data.subject_token_audience;
      const reason = audienceProblem(advertised, url);
      if (reason === undefined) return { audience: advertised, source: 'metadata' };
      return { audience: base, source: 'url', ignored: { advertised, reason } };
    }
  }
  return { audience: base, source: 'url' };
}
