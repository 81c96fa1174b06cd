/**
 * One HTTP request with @actions/http-client (which honours the runner's HTTPS_PROXY / NO_PROXY), bounded by a
 * connect timeout and a total timeout, with the body read up to a size cap (AnswerTooLarge beyond it). A failure
 * without an HTTP answer becomes a TransportError saying which: refused, DNS, reset, TLS, connect timeout or total
 * timeout — decided by the error's code, so a connection dropped mid-handshake is a network failure, not TLS.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { getProxyUrl, HttpClient } from '@actions/http-client';
import type { RequestHandler } from '@actions/http-client/lib/interfaces';
import type { TransportFailureKind } from './errors.js';
import { seconds } from '../shared/text.js';

export const USER_AGENT = 'deploy-sts-action';

export interface Timeouts {
  /** From starting the request to the TCP connection being up. */
  connectMs: number;
  /** From starting the request to the last byte of the answer. */
  totalMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, totalMs: 30_000 };

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers larger than this are not a token response (the service caps its own bodies far lower). */
const MAX_BODY_BYTES = 256 * 1024;

export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailureKind,
    /** One line for the user, e.g. `connection refused (ECONNREFUSED)`. */
    readonly detail: string,
    /** Worth another attempt (network and timeouts yes; certificate problems no). */
    readonly retryable: boolean,
  ) {
    super(detail);
    this.name = 'TransportError';
  }
}

/** Certificate and TLS protocol failures: retrying cannot fix them. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;

/** Connection-level failures, by code: worth another attempt, whatever the message says (even during TLS). */
const NETWORK_ERRORS: Record<string, { kind: TransportFailureKind; text: string }> = {
  ECONNREFUSED: { kind: 'unreachable', text: 'connection refused' },
  ENOTFOUND: { kind: 'unreachable', text: 'host name not found' },
  EAI_AGAIN: { kind: 'unreachable', text: 'host name not found' },
  EAI_FAIL: { kind: 'unreachable', text: 'host name not found' },
  ECONNRESET: { kind: 'unreachable', text: 'connection reset by the other end' },
  EPIPE: { kind: 'unreachable', text: 'connection reset by the other end' },
  ECONNABORTED: { kind: 'unreachable', text: 'connection aborted' },
  EHOSTUNREACH: { kind: 'unreachable', text: 'no route to the host' },
  ENETUNREACH: { kind: 'unreachable', text: 'no route to the host' },
  ENETDOWN: { kind: 'unreachable', text: 'no route to the host' },
  ETIMEDOUT: { kind: 'timeout', text: 'the operating system gave up connecting' },
};

const TLS_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in a self-signed certificate that is not trusted',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate is not valid for this host name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate does not chain to a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate does not chain to a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate does not chain to a trusted CA',
};

/** One readable line: Node's TLS messages carry OpenSSL internals and line breaks. */
function describeTlsFailure(code: string, message: string): string {
  const known = TLS_REASONS[code];
  if (known) return `${known} (${code})`;
  const openssl = /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:\n]+)/.exec(message)?.[1]?.trim();
  if (openssl === 'wrong version number' || openssl === 'packet length too long' || openssl === 'http request') {
    return `the server did not answer in TLS (${openssl}): is this an http:// port? (${code || 'TLS'})`;
  }
  const line = (openssl ?? message.split('\n')[0] ?? message).slice(0, 200);
  return `${line}${code ? ` (${code})` : ''}`;
}

/** A certificate or protocol failure: decided by the code; EPROTO only when OpenSSL is the one complaining. */
function isTlsFailure(code: string, message: string): boolean {
  return TLS_CODE.test(code) || (code === 'EPROTO' && /\b(SSL|TLS)\b|ssl|tls/i.test(message));
}

/** Maps what Node or http-client threw to a TransportError. */
export function classifyNetworkError(error: unknown, timeouts: Timeouts, totalTimedOut: boolean): TransportError {
  if (totalTimedOut) {
    return new TransportError('timeout', `no complete answer within the total timeout of ${seconds(timeouts.totalMs, 3)}`, true);
  }
  const err = (error ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message : String(error);
  // http-client's socket timeout; the idle timeout after connecting equals the total timeout, which fires first,
  // so this one is the connect timeout (the `timeout` request option arms the socket before it connects).
  if (message.startsWith('Request timeout')) {
    return new TransportError('timeout', `could not connect within the connect timeout of ${seconds(timeouts.connectMs, 3)}`, true);
  }
  // The code decides: a connection dropped during the handshake mentions TLS but is a network failure.
  const network = NETWORK_ERRORS[code];
  if (network) {
    const during = /\b(SSL|TLS)\b/.test(message) ? ' during the TLS handshake' : '';
    return new TransportError(network.kind, `${network.text}${during} (${code})`, true);
  }
  if (isTlsFailure(code, message)) {
    return new TransportError('tls_failure', describeTlsFailure(code, message), false);
  }
  return new TransportError('unreachable', `${message.split('\n')[0]?.slice(0, 200) ?? ''}${code ? ` (${code})` : ''}`, true);
}

/** The answer's body is larger than MAX_BODY_BYTES: whatever it is, it is not a token response. */
export class AnswerTooLarge extends Error {
  constructor(
    readonly status: number,
    readonly limitBytes: number = MAX_BODY_BYTES,
  ) {
    super(`the answer (HTTP ${status}) is larger than ${limitBytes / 1024} KiB`);
    this.name = 'AnswerTooLarge';
  }
}

async function readCapped(message: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of message) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      message.destroy();
      throw new AnswerTooLarge(message.statusCode ?? 0);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `[::1]` → `::1`: WHATWG URLs keep an IPv6 literal's brackets in `hostname`, Node's connect wants the address. */
export function unbracketHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Sends one request; resolves with any HTTP answer (all statuses), rejects with a TransportError or AnswerTooLarge. */
export async function sendOnce(request: HttpRequest, timeouts: Timeouts): Promise<HttpAnswer> {
  const controller = new AbortController();
  let totalTimedOut = false;
  const timer = setTimeout(() => {
    totalTimedOut = true;
    controller.abort();
  }, timeouts.totalMs);
  // Through a proxy, the CONNECT line needs `[v6]:port` as is; only a direct connection needs the bare address.
  const direct = getProxyUrl(request.url) === '';
  const bounded: RequestHandler = {
    prepareRequest(options) {
      options.signal = controller.signal;
      // Arms the socket's timeout before it connects; http-client replaces it with `socketTimeout` once connected.
      options.timeout = timeouts.connectMs;
      if (direct && typeof options.host === 'string') options.host = unbracketHost(options.host);
    },
    canHandleAuthentication: () => false,
    handleAuthentication: () => Promise.reject(new Error('no authentication handler')),
  };
  const client = new HttpClient(USER_AGENT, [bounded], {
    allowRedirects: false,
    allowRetries: false,
    keepAlive: false,
    socketTimeout: timeouts.totalMs,
  });
  try {
    const response = await client.request(request.method, request.url, request.body ?? '', request.headers);
    const body = await readCapped(response.message);
    return { status: response.message.statusCode ?? 0, headers: response.message.headers, body };
  } catch (error) {
    if (error instanceof AnswerTooLarge) throw error;
    throw classifyNetworkError(error, timeouts, totalTimedOut);
  } finally {
    clearTimeout(timer);
    // Tears down a socket still connecting after http-client's connect timeout, so nothing lingers.
    controller.abort();
    client.dispose();
  }
}
