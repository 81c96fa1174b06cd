/**
 * Why a request to the token endpoint was refused: a closed set of stable reasons. They are a public contract —
 * the `reason` of every audit row and log line, the `reason` label of `deploy_sts_denials_total`, and the table in
 * docs/http-api.md ("Denial reasons"), which test/denial-reasons.test.ts keeps in step with this list.
 */
export const DENIAL_REASONS = [
  // The request itself (RFC 8693 parameters, HTTP framing).
  'malformed_request',
  'duplicate_parameter',
  'unsupported_grant_type',
  'bad_content_type',
  'malformed_body',
  'too_large',
  'too_many_parameters',
  'method_not_allowed',
  // The GitHub OIDC token.
  'oversized',
  'malformed',
  'bad_algorithm',
  'unsupported_header',
  'untrusted_issuer',
  'unknown_kid',
  'bad_signature',
  'bad_audience',
  'bad_claims',
  'bad_iat',
  'not_yet_valid',
  'expired',
  'too_old',
  'replay',
  // The policy and the scope.
  'unknown_site',
  'repository_mismatch',
  'no_rule_matched',
  'untrusted_event',
  'invalid_scope',
  // Limits and dependencies (fail closed).
  'rate_limited',
  'jwks_unavailable',
  'storage_unavailable',
  'keys_unavailable',
  'audit_unavailable',
  'internal_error',
] as const;

export type DenialReason = (typeof DENIAL_REASONS)[number];

/** Refusals of the other endpoints (never audited: they are not token decisions). */
export type OtherRefusal = 'unauthenticated';

/** The `reason` of an audit row: a grant or one of the denial reasons. */
export type AuditReason = 'granted' | DenialReason;

export function isDenialReason(value: string): value is DenialReason {
  return (DENIAL_REASONS as readonly string[]).includes(value);
}
