/**
 * Verify a GitHub Actions OIDC token: RS256 only, issuer on the allowlist, exact audience, exp/iat/nbf/jti
 * required, 60 s clock tolerance, at most 10 minutes old; then the claim set is validated with zod.
 * Every failure is an OAuthError naming the exact condition; a key source that is down is a 503.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { OAuthError, quote } from '../errors.js';
import { githubClaimsSchema, type GitHubClaims } from './claims.js';
import type { KeySource } from './jwks.js';

export interface VerifierOptions {
  /** Trusted issuers and their key sources, by exact issuer URL. */
  issuers: ReadonlyMap<string, KeySource>;
  /** The audience this service expects (exact match). */
  audience: string;
  clockToleranceSeconds?: number;
  maxAgeSeconds?: number;
  /** Unix seconds; defaults to the wall clock. `policy explain --at` sets it. */
  now?: () => number;
}

export const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;

const bad = (description: string, reason: string) => new OAuthError('invalid_request', `subject_token: ${description}`, reason);

function readUnverified(token: string): { header: ReturnType<typeof decodeProtectedHeader>; payload: ReturnType<typeof decodeJwt> } {
  try {
    return { header: decodeProtectedHeader(token), payload: decodeJwt(token) };
  } catch {
    throw bad('is not a well-formed JWT (three base64url parts: header, claims, signature)', 'malformed');
  }
}

/** An ISO time for a claim value; never throws (claims may hold NaN, strings or numbers beyond Date's range). */
function describeTime(seconds: unknown): string {
  const ms = typeof seconds === 'number' ? seconds * 1000 : Number.NaN;
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(JSON.stringify(seconds));
}

export async function verifyGitHubToken(token: string, options: VerifierOptions): Promise<GitHubClaims> {
  const tolerance = options.clockToleranceSeconds ?? 60;
  const maxAge = options.maxAgeSeconds ?? 600;
  const nowSeconds = options.now ? options.now() : Math.floor(Date.now() / 1000);

  if (token.length > MAX_SUBJECT_TOKEN_BYTES) throw bad(`is larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`, 'oversized');
  const { header, payload } = readUnverified(token);
  if (header.alg !== 'RS256') {
    throw bad(`algorithm ${quote(header.alg)} is not accepted; GitHub signs OIDC tokens with RS256`, 'bad_algorithm');
  }
  const issuer = payload.iss;
  const source = typeof issuer === 'string' ? options.issuers.get(issuer) : undefined;
  if (!source) {
    throw bad(
      `issuer ${quote(issuer)} is not trusted by this service (operators: DEPLOY_STS_ISSUER lists the trusted issuers, e.g. for GHES or an enterprise issuer)`,
      'untrusted_issuer',
    );
  }

  let verified: Record<string, unknown>;
  try {
    const result = await jwtVerify(token, (h, t) => source.resolve(h, t), {
      algorithms: ['RS256'],
      issuer: source.issuer,
      audience: options.audience,
      clockTolerance: tolerance,
      maxTokenAge: maxAge,
      requiredClaims: ['exp', 'iat', 'nbf', 'jti', 'aud', 'iss'],
      currentDate: new Date(nowSeconds * 1000),
    });
    verified = result.payload as Record<string, unknown>;
  } catch (error) {
    throw mapJoseError(error, payload, options.audience, nowSeconds, maxAge);
  }

  if (typeof verified.iat === 'number' && verified.iat > nowSeconds + tolerance) {
    throw bad(`was issued in the future (iat ${describeTime(verified.iat)}); check the clocks`, 'iat_in_future');
  }
  // jose accepts an array that contains the audience; GitHub sends exactly one string.
  if (verified.aud !== options.audience) {
    throw bad(`audience must be the single string ${JSON.stringify(options.audience)}`, 'bad_audience');
  }
  const parsed = githubClaimsSchema.safeParse(verified);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.join('.') || 'claims';
    throw bad(`claim ${at} is invalid (${issue.message}); it does not have the shape GitHub gives it`, 'bad_claims');
  }
  return parsed.data;
}

function mapJoseError(
  error: unknown,
  payload: Record<string, unknown>,
  audience: string,
  now: number,
  maxAge: number,
): OAuthError {
  if (error instanceof OAuthError) return error;
  if (error instanceof errors.JWTExpired) {
    const exp = typeof payload.exp === 'number' ? ` at ${describeTime(payload.exp)}` : '';
    if (error.claim === 'iat') {
      return bad(`is older than the maximum age of ${maxAge} s (issued ${describeTime(Number(payload.iat))}); request the OIDC token right before the exchange`, 'too_old');
    }
    return bad(`expired${exp} (now ${describeTime(now)}); request the OIDC token right before the exchange`, 'expired');
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'aud':
        return bad(
          `audience ${quote(payload.aud)} is not this service's audience ${JSON.stringify(audience)}; request the token with that audience (core.getIDToken(audience) — the Action does this by default)`,
          'bad_audience',
        );
      case 'iss':
        return bad(`issuer ${quote(payload.iss)} is not trusted`, 'untrusted_issuer');
      case 'nbf':
        if (typeof payload.nbf !== 'number') return bad(`claim nbf is ${error.reason === 'missing' ? 'missing' : 'not a number'}; GitHub always sets it`, 'bad_claims');
        return bad(`is not valid yet (nbf ${describeTime(payload.nbf)}, now ${describeTime(now)}); check the clocks`, 'not_yet_valid');
      case 'iat':
        return bad(`has an invalid iat (${error.reason}); check the clocks`, 'bad_iat');
      default:
        return bad(`claim ${error.claim} is ${error.reason === 'missing' ? 'missing' : 'invalid'}; GitHub always sets it`, 'bad_claims');
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return bad('signature does not verify against the issuer\'s key', 'bad_signature');
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return bad('algorithm is not accepted; GitHub signs with RS256', 'bad_algorithm');
  if (error instanceof errors.JOSENotSupported) return bad(`uses an unsupported header (${error.message})`, 'unsupported_header');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return bad('no key of the issuer matches the token header', 'unknown_kid');
  }
  if (error instanceof errors.JOSEError) return bad(`is invalid (${error.code})`, 'malformed');
  return bad('could not be verified', 'malformed');
}
