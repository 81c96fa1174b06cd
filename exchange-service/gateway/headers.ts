/**
 * Which headers cross the gateway. An explicit allowlist both ways: hop-by-hop headers (RFC 9110 §7.6.1), the
 * client's Authorization, cookies, proxies' forwarding headers and anything unknown are dropped. The upstream
 * Authorization is added by the core from the stored credential, never taken from the client.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Client → platform. Content-Length is set by the core (kept for streamed bodies, recomputed for rewritten ones). */
export const REQUEST_HEADERS = ['accept', 'content-type', 'user-agent', 'x-nf-retry-count'] as const;

/** Platform → client. */
export const RESPONSE_HEADERS = [
  'content-type', 'content-length', 'etag', 'last-modified', 'cache-control', 'retry-after', 'link',
  'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset',
] as const;

const BOUND = 1024;

function pick(source: IncomingHttpHeaders, names: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of names) {
    const value = source[name];
    if (typeof value === 'string' && value.length <= BOUND) out[name] = value;
  }
  return out;
}

export function upstreamRequestHeaders(client: IncomingHttpHeaders): OutgoingHttpHeaders {
  return pick(client, REQUEST_HEADERS);
}

export function clientResponseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
  return pick(upstream, RESPONSE_HEADERS);
}
