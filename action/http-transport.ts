/**
 * One HTTP request with @actions/http-client (which honours the runner's HTTPS_PROXY / NO_PROXY), bounded by a
 * connect timeout and a total timeout, with the body read up to a size cap. A failure without an HTTP answer
 * becomes a TransportError saying which: refused, DNS, reset, TLS, connect timeout or total timeout.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HttpClient } from '@actions/http-client';
import type { RequestHandler } from '@actions/http-client/lib/interfaces';
import type { TransportFailureKind } from './errors.js';

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

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|EPROTO$)/;

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

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

/** Maps what Node or http-client threw to a TransportError. */
export function classifyNetworkError(error: unknown, timeouts: Timeouts, totalTimedOut: boolean): TransportError {
  if (totalTimedOut) {
    return new TransportError('timeout', `no complete answer within the total timeout of ${seconds(timeouts.totalMs)}`, true);
  }
  const err = (error ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message : String(error);
  // http-client's socket timeout; the idle timeout after connecting equals the total timeout, which fires first,
  // so this one is the connect timeout (the `timeout` request option arms the socket before it connects).
  if (message.startsWith('Request timeout')) {
    return new TransportError('timeout', `could not connect within the connect timeout of ${seconds(timeouts.connectMs)}`, true);
  }
  if (TLS_CODE.test(code) || /\b(SSL|TLS)\b/.test(message)) {
    return new TransportError('tls_failure', describeTlsFailure(code, message), false);
  }
  switch (code) {
    case 'ECONNREFUSED':
      return new TransportError('unreachable', 'connection refused (ECONNREFUSED)', true);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new TransportError('unreachable', `host name not found (${code})`, true);
    case 'ECONNRESET':
    case 'EPIPE':
      return new TransportError('unreachable', `connection reset by the other end (${code})`, true);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return new TransportError('unreachable', `no route to the host (${code})`, true);
    case 'ETIMEDOUT':
      return new TransportError('timeout', 'the operating system gave up connecting (ETIMEDOUT)', true);
    default:
      return new TransportError('unreachable', `${message}${code ? ` (${code})` : ''}`, true);
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
      throw new TransportError('unreachable', `the answer is larger than ${MAX_BODY_BYTES} bytes`, false);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Sends one request; resolves with any HTTP answer (all statuses), rejects with a TransportError. */
export async function sendOnce(request: HttpRequest, timeouts: Timeouts): Promise<HttpAnswer> {
  const controller = new AbortController();
  let totalTimedOut = false;
  const timer = setTimeout(() => {
    totalTimedOut = true;
    controller.abort();
  }, timeouts.totalMs);
  const bounded: RequestHandler = {
    prepareRequest(options) {
      options.signal = controller.signal;
      // Arms the socket's timeout before it connects; http-client replaces it with `socketTimeout` once connected.
      options.timeout = timeouts.connectMs;
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
    if (error instanceof TransportError) throw error;
    throw classifyNetworkError(error, timeouts, totalTimedOut);
  } finally {
    clearTimeout(timer);
    // Tears down a socket still connecting after http-client's connect timeout, so nothing lingers.
    controller.abort();
    client.dispose();
  }
}
