/**
 * Errors of the token endpoint, as RFC 6749 §5.2 codes plus the HTTP status they answer with.
 * Every failure in the exchange is one of these typed values: routes map them to JSON, the audit log
 * records their reason and description, and nothing else (no stack, no HTML) reaches a client.
 */
import type { DenialReason, OtherRefusal } from './denial.js';

/**
 * The `error` codes an answer may carry, and only those the RFCs define: RFC 6749 §5.2 (and §4.1.2.1 for
 * `server_error` / `temporarily_unavailable`) and RFC 8693 §2.2.2 (`invalid_target`). The finer cause is the
 * error's `reason`; a status other than the code's own (405, 413, 429) is given explicitly.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_target'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'invalid_client'
  | 'temporarily_unavailable'
  | 'server_error';

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_target: 400,
  invalid_scope: 400,
  unsupported_grant_type: 400,
  invalid_client: 401,
  temporarily_unavailable: 503,
  server_error: 500,
};

export class OAuthError extends Error {
  readonly status: number;
  /** Seconds, sent as `Retry-After` (429 and 503 answers). */
  retryAfter: number | undefined;
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    /** A short, stable machine reason for the audit log and metrics (e.g. `replay`, `bad_signature`). */
    readonly reason: DenialReason | OtherRefusal,
    status?: number,
  ) {
    // An expected refusal, answered as JSON and audited, never shown with a stack: capturing one cost more than
    // building the rest of the denial (it walks every async frame of the request).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description);
    Error.stackTraceLimit = limit;
    this.name = 'OAuthError';
    this.status = status ?? STATUS[code];
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** A rate limit refused the request: 429 with Retry-After. */
export function rateLimited(description: string, retryAfter: number): OAuthError {
  const error = new OAuthError('temporarily_unavailable', description, 'rate_limited', 429);
  error.retryAfter = retryAfter;
  return error;
}

/** A dependency (JWKS, storage, audit, keys) is unavailable: the service fails closed with 503. */
export function unavailable(
  what: string,
  reason: 'jwks_unavailable' | 'storage_unavailable' | 'keys_unavailable' | 'audit_unavailable',
): OAuthError {
  return new OAuthError('temporarily_unavailable', `${what} is unavailable; no token was issued. Try again shortly.`, reason);
}

const TOKEN_SHAPED = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?/g;

/** A description fit for the audit log: anything shaped like a JWT (a token a client put in the wrong field) is cut out. */
export function redactTokens(text: string): string {
  return text.replace(TOKEN_SHAPED, '[redacted token]');
}
