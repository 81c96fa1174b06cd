/**
 * The service's RFC 8414 metadata, read only for the audience it expects on GitHub OIDC tokens
 * (`subject_token_audience`, a deploy-sts extension). Without that field (or metadata) the audience is the URL.
 */
import { z } from 'zod';
import { DEFAULT_TIMEOUTS, type Timeouts } from './http-transport.js';
import { serviceUnavailable } from './errors.js';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, sendWithRetries, type RetryPolicy } from './retry.js';
import { displayUrl, endpoint } from './url.js';

export const METADATA_PATH = '.well-known/oauth-authorization-server';

const Metadata = z.object({ subject_token_audience: z.string().min(1) });

export interface AudienceChoice {
  audience: string;
  /** Where it came from, for the log. */
  source: 'metadata' | 'url';
}

export interface DiscoverOptions {
  timeouts?: Timeouts;
  retry?: Partial<RetryPolicy>;
  log?: (line: string) => void;
}

/**
 * The advertised audience, else the service URL. Network failures and 5xx (after retries) throw: guessing an
 * audience while the service is down would only turn an outage into a confusing audience error.
 */
export async function discoverAudience(url: URL, options: DiscoverOptions = {}): Promise<AudienceChoice> {
  const base = displayUrl(url);
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const { answer, attempts } = await sendWithRetries<null>({
    serviceUrl: base,
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    policy,
    log: options.log ?? (() => {}),
    prepare: async () => ({ context: null, request: { method: 'GET', url: endpoint(url, METADATA_PATH), headers: { accept: 'application/json' } } }),
  });
  if (isRetryableStatus(answer.status)) throw serviceUnavailable({ status: answer.status, url: base, attempts });
  if (answer.status === 200) {
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch {
      json = undefined;
    }
    const parsed = Metadata.safeParse(json);
    if (parsed.success) return { audience: parsed.data.subject_token_audience, source: 'metadata' };
  }
  return { audience: base, source: 'url' };
}
