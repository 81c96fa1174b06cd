/**
 * Parse the body of `POST /token` (RFC 8693) at the edge. Every field is a single string: a duplicated or
 * array-valued parameter is a malformed request (RFC 6749 §3.2: parameters MUST NOT be included more than once).
 */
import { ACCESS_TOKEN_TYPE, GRANT_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, SITE_SLUG } from '../../shared/wire.js';
import { quote } from '../../shared/text.js';
import type { DenialReason } from '../denial.js';
import { OAuthError } from '../errors.js';

export { ACCESS_TOKEN_TYPE, GRANT_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE };

const FIELDS = ['grant_type', 'subject_token', 'subject_token_type', 'resource', 'audience', 'scope', 'requested_token_type'] as const;

export interface TokenRequest {
  subjectToken: string;
  site: string;
  /** Space-separated permissions, or undefined for everything the rule grants. */
  scope: string | undefined;
}

const invalid = (description: string, reason: DenialReason = 'malformed_request') => new OAuthError('invalid_request', description, reason);

/** Quote a client-supplied value in a description: at most 64 characters, so a misplaced token is never echoed whole. */
const shown = (value: string | undefined): string => (value === undefined ? 'null' : quote(value, 64));

export function parseTokenRequest(body: unknown): TokenRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the request body must be application/x-www-form-urlencoded (or a JSON object) with the RFC 8693 fields');
  }
  // Every field is checked to be a single string first, in FIELDS order; then read as such (for speed, without
  // copying them into an object of their own).
  for (let i = 0; i < FIELDS.length; i++) {
    const name = FIELDS[i]!;
    const value = (body as Record<string, unknown>)[name];
    if (value !== undefined && typeof value !== 'string') {
      throw invalid(`parameter ${name} must appear once, as a string (got ${Array.isArray(value) ? 'several values' : typeof value})`, 'duplicate_parameter');
    }
  }
  const fields = body as Partial<Record<(typeof FIELDS)[number], string>>;
  if (fields.grant_type === undefined) throw invalid(`grant_type is missing; use ${GRANT_TYPE}`);
  if (fields.grant_type !== GRANT_TYPE) {
    throw new OAuthError('unsupported_grant_type', `grant_type ${shown(fields.grant_type)} is not supported; use ${GRANT_TYPE}`, 'unsupported_grant_type');
  }
  if (!fields.subject_token) throw invalid('subject_token is missing: send the GitHub Actions OIDC token');
  if (fields.subject_token_type !== ID_TOKEN_TYPE && fields.subject_token_type !== JWT_TOKEN_TYPE) {
    throw invalid(`subject_token_type must be ${ID_TOKEN_TYPE} (or ${JWT_TOKEN_TYPE}), got ${shown(fields.subject_token_type)}`);
  }
  if (fields.requested_token_type !== undefined && fields.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw invalid(`requested_token_type can only be ${ACCESS_TOKEN_TYPE}`);
  }
  if (fields.resource !== undefined && fields.audience !== undefined && fields.resource !== fields.audience) {
    throw new OAuthError('invalid_target', 'resource and audience name different targets; send one of them as site:<slug>', 'malformed_request');
  }
  const target = fields.resource ?? fields.audience;
  if (target === undefined) throw invalid('resource is missing: send resource=site:<slug> naming the site to deploy');
  const site = target.startsWith('site:') ? target.slice(5) : '';
  if (!SITE_SLUG.test(site)) {
    throw new OAuthError('invalid_target', `resource ${JSON.stringify(target.slice(0, 80))} is not site:<slug> (slug: lowercase letters, digits and -, at most 63)`, 'malformed_request');
  }
  const scope = fields.scope?.trim() || undefined;
  return { subjectToken: fields.subject_token, site, scope };
}
