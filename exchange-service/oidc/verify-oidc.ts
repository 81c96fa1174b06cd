/**
 * Verify a GitHub Actions OIDC token: RS256 only, issuer on the allowlist, exact audience, exp/iat/nbf/jti
 * required, 60 s clock tolerance, at most 10 minutes old; then the claim set is validated with zod.
 * Every failure is an OAuthError naming the exact condition; a key source that is down is a 503.
 */
import { quote } from '../../shared/text.js';
import type { DenialReason } from '../denial.js';
import { OAuthError } from '../errors.js';
import { fitsGitHubClaims, githubClaimsSchema, type GitHubClaims } from './claims.js';
import { decodeCompactJws, verifyRs256 } from './compact-jws.js';
import type { KeySource } from './jwks.js';

export interface VerifierOptions {
  /** Trusted issuers and their key sources, by exact issuer URL. */
  issuers: ReadonlyMap<string, KeySource>;
  /** The audience this service expects (exact match). */
  audience: string;
  clockToleranceSeconds?: number;
  /** Unix seconds; defaults to the wall clock. `policy explain --at` sets it. */
  now?: () => number;
}

export const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;
/**
 * A subject token older than this (from its `iat`, plus the clock tolerance) is refused, whatever its `exp` says. Not
 * an option: the replay cache keeps a token's row until `min(exp, iat + MAX_AGE_SECONDS)` (exchange.ts) plus a grace
 * of at least CLOCK_TOLERANCE_SECONDS (service.ts prunes twice that late), so that no row goes before the verifier
 * stops accepting its token.
 */
export const MAX_AGE_SECONDS = 600;
/** The default clock tolerance on `nbf`, `exp` and `iat`, in seconds (the service uses the default). */
export const CLOCK_TOLERANCE_SECONDS = 60;

const REQUIRED_CLAIMS = ['exp', 'iat', 'nbf', 'jti'] as const;

const bad = (description: string, reason: DenialReason) => new OAuthError('invalid_request', `subject_token: ${description}`, reason);

/** An ISO time for a claim value; never throws (claims may hold NaN, strings or numbers beyond Date's range). */
function describeTime(seconds: unknown): string {
  const ms = typeof seconds === 'number' ? seconds * 1000 : Number.NaN;
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(JSON.stringify(seconds));
}

export async function verifyGitHubToken(token: string, options: VerifierOptions): Promise<GitHubClaims> {
  const tolerance = options.clockToleranceSeconds ?? CLOCK_TOLERANCE_SECONDS;
  const maxAge = MAX_AGE_SECONDS;
  const now = options.now ? options.now() : Math.floor(Date.now() / 1000);

  if (token.length > MAX_SUBJECT_TOKEN_BYTES) throw bad(`is larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`, 'oversized');
  const jws = decodeCompactJws(token);
  if (!jws) throw bad('is not a well-formed JWT (three base64url parts: header, claims, signature)', 'malformed');
  const { header, payload } = jws;
  if (header.alg !== 'RS256') {
    throw bad(`algorithm ${quote(header.alg)} is not accepted; GitHub signs OIDC tokens with RS256`, 'bad_algorithm');
  }
  if (header.crit !== undefined) {
    throw bad('uses a critical header extension (crit), which GitHub never sends and this service does not support', 'unsupported_header');
  }
  const issuer = payload.iss;
  const source = typeof issuer === 'string' ? options.issuers.get(issuer) : undefined;
  if (!source) {
    throw bad(
      `issuer ${quote(issuer)} is not trusted by this service (operators: DEPLOY_STS_ISSUER lists the trusted issuers, e.g. for GHES or an enterprise issuer)`,
      'untrusted_issuer',
    );
  }
  // Only the kid selects a key, among the issuer's own; the signature is checked before any claim is trusted.
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  // The key at hand when the source has it (the common case), without resolve's promises.
  const key = (kid !== undefined ? source.cachedKey?.(kid) : undefined) ?? (await source.resolve(kid !== undefined ? { alg: 'RS256', kid } : { alg: 'RS256' }));
  if (!verifyRs256(jws, key)) throw bad(`signature does not verify against the issuer's key${source.signatureHint?.(payload) ?? ''}`, 'bad_signature');

  if (payload.aud === undefined) throw bad(`the audience (aud) is missing; request the token with audience ${JSON.stringify(options.audience)}`, 'bad_audience');
  for (const claim of REQUIRED_CLAIMS) {
    if (payload[claim] === undefined) throw bad(`claim ${claim} is missing; GitHub always sets it`, 'bad_claims');
  }
  // GitHub sends exactly one audience string; an array, even one that contains ours, is refused.
  if (Array.isArray(payload.aud)) throw bad(`audience must be the single string ${JSON.stringify(options.audience)}`, 'bad_audience');
  if (payload.aud !== options.audience) {
    throw bad(
      `audience ${quote(payload.aud)} is not this service's audience ${JSON.stringify(options.audience)}; request the token with that audience (core.getIDToken(audience) — the Action does this by default)`,
      'bad_audience',
    );
  }
  const { exp, iat, nbf } = payload;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw bad('has an invalid iat (not a number); check the clocks', 'bad_iat');
  if (typeof nbf !== 'number' || !Number.isFinite(nbf)) throw bad('claim nbf is not a number; GitHub always sets it', 'bad_claims');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw bad('claim exp is invalid; GitHub always sets it', 'bad_claims');
  if (nbf > now + tolerance) {
    throw bad(`is not valid yet (nbf ${describeTime(nbf)}, now ${describeTime(now)}); check the clocks`, 'not_yet_valid');
  }
  if (exp <= now - tolerance) {
    throw bad(`expired at ${describeTime(exp)} (now ${describeTime(now)}); request the OIDC token right before the exchange`, 'expired');
  }
  if (iat > now + tolerance) throw bad(`was issued in the future (iat ${describeTime(iat)}); check the clocks`, 'bad_iat');
  if (now - iat - tolerance > maxAge) {
    throw bad(`is older than the maximum age of ${maxAge} s (issued ${describeTime(iat)}); request the OIDC token right before the exchange`, 'too_old');
  }

  if (fitsGitHubClaims(payload)) return payload;
  const parsed = githubClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.join('.') || 'claims';
    throw bad(`claim ${at} is invalid (${issue.message}); it does not have the shape GitHub gives it`, 'bad_claims');
  }
  return parsed.data;
}
