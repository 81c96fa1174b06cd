/** Why a deploy token was refused: a closed set of stable codes, each with the HTTP status a relying party answers. */

export type DeployTokenErrorCode =
  /** Not a compact JWS, or a claim every deploy token carries is missing or of the wrong type. */
  | 'malformed'
  /** `typ` is not `at+jwt`, `alg` is not `EdDSA`, or `crit` is present. */
  | 'unsupported_token'
  /** No key of the issuer has this `kid` (after a refetch, respecting the cooldown). */
  | 'unknown_key'
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  /** The issuer's metadata or JWKS could not be fetched: retry later (fail closed). */
  | 'keys_unavailable'
  | 'revoked'
  /** Valid token, but for another site. */
  | 'wrong_site'
  /** Valid token, but its scope does not include (or imply) the permission needed. */
  | 'insufficient_scope'
  /** Valid token, but a preview token where production is needed (or the reverse). */
  | 'wrong_context';

export const DEPLOY_TOKEN_ERROR_CODES: readonly DeployTokenErrorCode[] = [
  'malformed', 'unsupported_token', 'unknown_key', 'bad_signature', 'wrong_issuer', 'wrong_audience', 'expired',
  'keys_unavailable', 'revoked', 'wrong_site', 'insufficient_scope', 'wrong_context',
];

/** 401: the token itself is not acceptable; 403: acceptable, but not for this; 503: cannot tell right now. */
export function statusFor(code: DeployTokenErrorCode): 401 | 403 | 503 {
  if (code === 'keys_unavailable') return 503;
  if (code === 'wrong_site' || code === 'insufficient_scope' || code === 'wrong_context') return 403;
  return 401;
}

export class DeployTokenError extends Error {
  readonly status: 401 | 403 | 503;
  constructor(
    readonly code: DeployTokenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DeployTokenError';
    this.status = statusFor(code);
  }
}
