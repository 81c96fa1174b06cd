/**
 * The RFC 8693 token exchange against the deploy-sts service: a fresh GitHub OIDC token for every attempt
 * (the service accepts a subject token once, and each fetch has a bounded wait), retries per retry.ts within
 * the step's deadline, and every answer mapped to an issued token or a typed ActionError. The issued token is
 * handed to `mask` the moment it is parsed, before anything else; a token the Action then refuses (another
 * site, a malformed answer) is revoked before the error is thrown. Text the service chose is shown on one line.
 */
import { z } from 'zod';
import { startDeadline, type Deadline } from './deadline.js';
import { ActionError, badResponse, serviceRefused, serviceUnavailable, type GiveUp } from './errors.js';
import { DEFAULT_TIMEOUTS, type HttpAnswer, type Timeouts } from './http-transport.js';
import { DEFAULT_ID_TOKEN_TIMEOUT_MS, fetchIdToken } from './id-token.js';
import { printable } from './printable.js';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, sendWithRetries, type RetryPolicy } from './retry.js';
import { revokeToken } from './revoke.js';
import { decodeClaimsForDisplay, decodePolicyClaims } from './subject-claims.js';
import { displayUrl, endpoint } from './url.js';
import { GRANT_TYPE, ID_TOKEN_TYPE, MAX_TOKEN_TTL_SECONDS, PERMISSION, RULE_NAME, SITE_SLUG } from '../shared/wire.js';

export { GRANT_TYPE, ID_TOKEN_TYPE };

export type DeployContext = 'production' | 'preview';

export interface IssuedToken {
  accessToken: string;
  tokenType: 'Bearer';
  issuedTokenType: string | undefined;
  /** Seconds, as the service said. */
  expiresIn: number;
  /** Computed from when the answering request was sent, so never later than the real expiry. */
  expiresAt: Date;
  scope: string[];
  site: string;
  context: DeployContext;
  rule: string;
  /** How many attempts it took. */
  attempts: number;
}

export interface ExchangeRequest {
  site: string;
  /** Empty = everything the matching rule grants. */
  scope: string[];
  /** Audience of the GitHub OIDC token. */
  audience: string;
}

export interface ExchangeClientOptions {
  /** Base URL of the service. */
  url: URL;
  /** Fetches a new GitHub OIDC token for the audience (core.getIDToken in the Action). */
  getIdToken: (audience: string) => Promise<string>;
  /** Registers a secret with the log masker (core.setSecret in the Action). */
  mask: (secret: string) => void;
  timeouts?: Timeouts;
  retry?: Partial<RetryPolicy>;
  /** The step's overall deadline, shared with metadata discovery; default: a fresh one. */
  deadline?: Deadline;
  /** How long one OIDC token fetch may take (never longer than the time left before the deadline). */
  idTokenTimeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * What every field of a token response must look like. They are copied into step outputs and environment variables
 * (and printed), so each gets a strict shape, not just a control-character check: a service (or whatever answers at
 * its URL) cannot smuggle text into them.
 */
const SHAPES = {
  access_token: 'a compact JWS: three base64url parts separated by dots, at most 16 KiB',
  issued_token_type: 'an RFC 8693 token type URN',
  token_type: 'Bearer',
  expires_in: 'a whole number of seconds from 1 to 3600',
  scope: 'space-separated permissions such as deployments:write',
  site: 'a site slug: lower-case letters, digits and -',
  context: 'production or preview',
  rule: 'a rule name: letters, digits, _, . and -, at most 64 characters',
} as const;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const TOKEN_TYPE_URN = /^urn:ietf:params:oauth:token-type:[a-z_]{1,32}$/;
/** Space-separated permissions, each of the wire's shape, at most 32 of them. */
const isScope = (scope: string): boolean => {
  if (scope === '') return true;
  const list = scope.split(' ');
  return list.length <= 32 && list.every((p) => PERMISSION.test(p) && p.length <= 64);
};

const TokenResponse = z.object({
  access_token: z.string().max(16 * 1024).regex(COMPACT_JWS),
  issued_token_type: z.string().regex(TOKEN_TYPE_URN).optional(),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'token_type is not Bearer'),
  expires_in: z.number().int().min(1).max(MAX_TOKEN_TTL_SECONDS),
  scope: z.string().refine(isScope).default(''),
  site: z.string().regex(SITE_SLUG),
  context: z.enum(['production', 'preview']),
  rule: z.string().regex(RULE_NAME),
});

const ErrorResponse = z.object({
  error: z.string().min(1),
  error_description: z.string().optional(),
});

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** Masks every string that could be a credential, before the body is looked at any further. */
function maskCredentials(json: unknown, mask: (secret: string) => void): void {
  if (typeof json !== 'object' || json === null) return;
  for (const key of ['access_token', 'refresh_token', 'id_token']) {
    const value = (json as Record<string, unknown>)[key];
    if (typeof value === 'string' && value !== '') mask(value);
  }
}

/** The access token of an answer, whether or not the rest of it is valid. */
function accessTokenOf(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const value = (json as Record<string, unknown>).access_token;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function parseIssued(json: unknown, status: number, request: ExchangeRequest, url: string, startedAt: number, attempts: number): IssuedToken {
  const parsed = TokenResponse.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? '(body)')))]
      .map((field) => (field in SHAPES ? `${field} (${SHAPES[field as keyof typeof SHAPES]})` : field))
      .join(', ');
    throw badResponse(url, json === undefined ? `HTTP ${status} with a body that is not JSON` : `HTTP ${status} without a valid ${fields}`);
  }
  const token = parsed.data;
  if (token.site !== request.site) {
    throw badResponse(url, `the token is for site "${printable(token.site, 100)}", not the requested "${request.site}"`);
  }
  return {
    accessToken: token.access_token,
    tokenType: 'Bearer',
    issuedTokenType: token.issued_token_type,
    expiresIn: Math.floor(token.expires_in),
    expiresAt: new Date(startedAt + Math.floor(token.expires_in) * 1000),
    scope: token.scope.split(' ').filter((s) => s !== ''),
    site: token.site,
    context: token.context,
    rule: token.rule,
    attempts,
  };
}

/** A refused token is still a live token: revoke it (best effort) and say how that went. */
async function revokeRefused(error: ActionError, token: string, options: ExchangeClientOptions): Promise<ActionError> {
  const outcome = await revokeToken(options.url, token, {
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    retry: { ...options.retry, maxAttempts: 2 },
    log: options.log ?? (() => {}),
  });
  const said = outcome.revoked
    ? 'The Action revoked the token the service issued with this answer.'
    : `The Action could not revoke the token the service issued with this answer (${outcome.reason}); it stays valid until it expires.`;
  return new ActionError(error.code, error.problem, error.fix, [...error.details, said]);
}

/** The service's OAuth error, on one line each. */
function oauthError(answer: HttpAnswer): { error: string; description: string } | undefined {
  const parsed = ErrorResponse.safeParse(parseJson(answer.body));
  if (!parsed.success) return undefined;
  return { error: printable(parsed.data.error, 200), description: printable(parsed.data.error_description ?? '') };
}

function refusal(answer: HttpAnswer, request: ExchangeRequest, url: string, subjectToken: string): ActionError {
  const said = oauthError(answer);
  const claims = decodeClaimsForDisplay(subjectToken);
  const policyClaims = decodePolicyClaims(subjectToken);
  return serviceRefused({
    status: answer.status,
    error: said?.error ?? `http_${answer.status}`,
    description: said?.description ?? 'the answer is not an OAuth error (JSON with `error`), so this is probably not a deploy-sts service',
    site: request.site,
    url,
    ...(claims ? { claims } : {}),
    ...(policyClaims ? { policyClaims } : {}),
  });
}

function unavailable(answer: HttpAnswer, url: string, attempts: number, gaveUp: GiveUp | undefined): ActionError {
  const said = oauthError(answer);
  return serviceUnavailable({ status: answer.status, url, attempts, gaveUp, ...(said ? { error: said.error, description: said.description } : {}) });
}

export function tokenRequestBody(request: ExchangeRequest, subjectToken: string): string {
  const form = new URLSearchParams({
    grant_type: GRANT_TYPE,
    subject_token: subjectToken,
    subject_token_type: ID_TOKEN_TYPE,
    resource: `site:${request.site}`,
  });
  if (request.scope.length > 0) form.set('scope', request.scope.join(' '));
  return form.toString();
}

/** Trades a GitHub OIDC token for a deploy token; throws ActionError. */
export async function exchangeToken(request: ExchangeRequest, options: ExchangeClientOptions): Promise<IssuedToken> {
  const url = displayUrl(options.url);
  const tokenUrl = endpoint(options.url, 'token');
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const deadline = options.deadline ?? startDeadline(undefined, policy.now);
  const idTokenTimeoutMs = options.idTokenTimeoutMs ?? DEFAULT_ID_TOKEN_TIMEOUT_MS;
  const final = await sendWithRetries<string>({
    serviceUrl: url,
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    policy,
    deadline,
    log: options.log ?? (() => {}),
    prepare: async () => {
      const wait = Math.max(0, Math.min(idTokenTimeoutMs, deadline.remaining()));
      const subjectToken = await fetchIdToken(options.getIdToken, request.audience, wait);
      return {
        context: subjectToken,
        request: {
          method: 'POST',
          url: tokenUrl,
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: tokenRequestBody(request, subjectToken),
        },
      };
    },
  });
  const { answer, attempts, startedAt } = final;
  if (answer.status >= 200 && answer.status < 300) {
    const json = parseJson(answer.body);
    maskCredentials(json, options.mask);
    try {
      return parseIssued(json, answer.status, request, url, startedAt, attempts);
    } catch (error) {
      const token = accessTokenOf(json);
      if (error instanceof ActionError && token !== undefined) throw await revokeRefused(error, token, options);
      throw error;
    }
  }
  if (answer.status >= 300 && answer.status < 400) {
    const location = answer.headers.location;
    throw badResponse(url, `HTTP ${answer.status} redirect${location ? ` to ${printable(location, 300)}` : ''} (the Action does not follow redirects; set \`url\` to the final address)`);
  }
  if (isRetryableStatus(answer.status)) throw unavailable(answer, url, attempts, final.gaveUp);
  throw refusal(answer, request, url, final.context);
}
