/**
 * The RFC 8693 token exchange against the deploy-sts service: a fresh GitHub OIDC token for every attempt
 * (the service accepts a subject token once), retries per retry.ts, and every answer mapped to an issued token
 * or a typed ActionError. The issued token is handed to `mask` the moment it is parsed, before anything else.
 */
import { z } from 'zod';
import { ActionError, badResponse, idTokenFailed, serviceRefused, serviceUnavailable } from './errors.js';
import { DEFAULT_TIMEOUTS, type HttpAnswer, type Timeouts } from './http-transport.js';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, sendWithRetries, type RetryPolicy } from './retry.js';
import { decodeClaimsForDisplay } from './subject-claims.js';
import { displayUrl, endpoint } from './url.js';

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

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
  log?: (line: string) => void;
}

const TokenResponse = z.object({
  access_token: z.string().min(1),
  issued_token_type: z.string().optional(),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'token_type is not Bearer'),
  expires_in: z.number().positive().max(86_400),
  scope: z.string().default(''),
  site: z.string().min(1),
  context: z.enum(['production', 'preview']),
  rule: z.string().min(1),
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

function parseIssued(answer: HttpAnswer, request: ExchangeRequest, url: string, startedAt: number, attempts: number, mask: (s: string) => void): IssuedToken {
  const json = parseJson(answer.body);
  maskCredentials(json, mask);
  const parsed = TokenResponse.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ');
    throw badResponse(url, json === undefined ? `HTTP ${answer.status} with a body that is not JSON` : `HTTP ${answer.status} without a valid ${fields}`);
  }
  const token = parsed.data;
  if (token.site !== request.site) {
    throw badResponse(url, `the token is for site "${token.site}", not the requested "${request.site}"`);
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

function refusal(answer: HttpAnswer, request: ExchangeRequest, url: string, subjectToken: string): ActionError {
  const parsed = ErrorResponse.safeParse(parseJson(answer.body));
  const claims = decodeClaimsForDisplay(subjectToken);
  if (!parsed.success) {
    return serviceRefused({
      status: answer.status,
      error: `http_${answer.status}`,
      description: 'the answer is not an OAuth error (JSON with `error`), so this is probably not a deploy-sts service',
      site: request.site,
      url,
      ...(claims ? { claims } : {}),
    });
  }
  return serviceRefused({
    status: answer.status,
    error: parsed.data.error,
    description: parsed.data.error_description ?? '',
    site: request.site,
    url,
    ...(claims ? { claims } : {}),
  });
}

function unavailable(answer: HttpAnswer, url: string, attempts: number): ActionError {
  const parsed = ErrorResponse.safeParse(parseJson(answer.body));
  return serviceUnavailable({
    status: answer.status,
    url,
    attempts,
    ...(parsed.success ? { error: parsed.data.error, description: parsed.data.error_description ?? '' } : {}),
  });
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
  const final = await sendWithRetries<string>({
    serviceUrl: url,
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    policy,
    log: options.log ?? (() => {}),
    prepare: async () => {
      let subjectToken: string;
      try {
        subjectToken = await options.getIdToken(request.audience);
      } catch (error) {
        throw error instanceof ActionError ? error : idTokenFailed(error instanceof Error ? error.message : String(error));
      }
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
    return parseIssued(answer, request, url, startedAt, attempts, options.mask);
  }
  if (answer.status >= 300 && answer.status < 400) {
    const location = answer.headers.location;
    throw badResponse(url, `HTTP ${answer.status} redirect${location ? ` to ${location}` : ''} (the Action does not follow redirects; set \`url\` to the final address)`);
  }
  if (isRetryableStatus(answer.status)) throw unavailable(answer, url, attempts);
  throw refusal(answer, request, url, final.context);
}
