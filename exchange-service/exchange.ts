/**
 * One token exchange, start to end: parse → verify the GitHub token → accept its jti once → evaluate the site's
 * policy → check the scope → mint → write the audit record → answer. Every decision, granted or denied, is in the
 * audit log before the answer leaves; if that write fails the answer is a 503 and no token is returned.
 */
import { OAuthError, rateLimited, redactTokens, unavailable } from './errors.js';
import type { KeyRing } from './keys/key-ring.js';
import { mintAccessToken } from './mint.js';
import type { GitHubClaims } from './oidc/claims.js';
import { isTrustedEvent } from './oidc/claims.js';
import { ACCESS_TOKEN_TYPE, parseTokenRequest } from './http/token-request.js';
import { evaluate } from './policy/match.js';
import { resolveScope } from './policy/permissions.js';
import type { Context, PolicySet } from './policy/types.js';
import type { AuditRecord, Storage } from './storage/types.js';

export interface ExchangeDeps {
  verify(token: string): Promise<GitHubClaims>;
  policies(): PolicySet;
  storage: Storage;
  keys: KeyRing;
  /** `iss` of minted tokens. */
  issuer: string;
  /** Default `aud` of minted tokens (a policy file may override it). */
  tokenAudience: string;
  now(): number;
  /** Per-repository rate limit, asked once the token is verified and its jti accepted (so the repository id is genuine
   *  and a replayed token spends nothing). */
  admitRepository?(repositoryId: string): { allowed: boolean; retryAfter: number };
}

export interface TokenResponse {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  site: string;
  context: Context;
  rule: string;
}

export interface ExchangeOutcome {
  /** The answer, or the error to answer with. */
  response?: TokenResponse;
  error?: OAuthError;
  /** The decision as recorded (for metrics and logs); never holds a token. */
  audit: AuditRecord;
}

function baseRecord(now: number, clientIp: string | null): AuditRecord {
  return {
    time: now,
    result: 'denied',
    site: null,
    rule: null,
    context: null,
    reason: '',
    detail: '',
    repository: null,
    repositoryId: null,
    eventName: null,
    ref: null,
    workflowRef: null,
    environment: null,
    runId: null,
    subjectJti: null,
    tokenJti: null,
    scope: null,
    expiresAt: null,
    clientIp,
  };
}

function withClaims(record: AuditRecord, c: GitHubClaims): AuditRecord {
  return {
    ...record,
    repository: c.repository,
    repositoryId: c.repository_id,
    eventName: c.event_name,
    ref: c.ref,
    workflowRef: c.job_workflow_ref ?? c.workflow_ref ?? null,
    environment: c.environment ?? null,
    runId: c.run_id,
    subjectJti: c.jti,
  };
}

/**
 * Run one exchange. Never throws: the outcome carries either the response or the OAuthError to answer with.
 * A failure to write the audit record turns any outcome into a 503.
 */
export async function exchange(body: unknown, deps: ExchangeDeps, clientIp: string | null): Promise<ExchangeOutcome> {
  const now = deps.now();
  let record = baseRecord(now, clientIp);
  let result: { response?: TokenResponse; error?: OAuthError };
  try {
    const decided = await decide(body, deps, now, (r) => {
      record = r(record);
    });
    result = { response: decided };
  } catch (error) {
    const oauth = error instanceof OAuthError ? error : new OAuthError('server_error', 'the exchange failed unexpectedly; no token was issued', 'internal_error');
    record = { ...record, result: 'denied', reason: oauth.reason, detail: redactTokens(oauth.description) };
    result = { error: oauth };
  }
  try {
    await deps.storage.appendAudit(record);
  } catch {
    const error = unavailable('the audit log', 'audit_unavailable');
    return { error, audit: { ...record, result: 'denied', reason: error.reason, detail: error.description, tokenJti: null } };
  }
  return { ...result, audit: record };
}

async function decide(
  body: unknown,
  deps: ExchangeDeps,
  now: number,
  update: (f: (r: AuditRecord) => AuditRecord) => void,
): Promise<TokenResponse> {
  const request = parseTokenRequest(body);
  update((r) => ({ ...r, site: request.site }));

  const claims = await deps.verify(request.subjectToken);
  update((r) => withClaims(r, claims));

  let first: boolean;
  try {
    first = await deps.storage.consumeJti(claims.iss, claims.jti, claims.exp);
  } catch {
    throw unavailable('the replay cache', 'storage_unavailable');
  }
  if (!first) {
    throw new OAuthError(
      'invalid_request',
      `subject_token: this token (jti ${claims.jti}) was already exchanged; a GitHub OIDC token is accepted once — request a fresh one (core.getIDToken) for each exchange`,
      'replay',
    );
  }

  // Charged only once the jti is accepted: replaying someone's used token must not spend their repository's bucket.
  // (The token is then spent even when the answer is 429: the Action fetches a fresh one for each attempt.)
  const admitted = deps.admitRepository?.(claims.repository_id);
  if (admitted && !admitted.allowed) {
    throw rateLimited(`repository ${claims.repository} (id ${claims.repository_id}) is over its exchange rate limit; retry in ${admitted.retryAfter} s`, admitted.retryAfter);
  }

  const decision = evaluate(deps.policies(), request.site, claims);
  if (!decision.granted) throw new OAuthError('invalid_target', decision.description, decision.reason);
  // Defence in depth: the policy engine already refuses this; the token endpoint refuses it again.
  if (decision.context === 'production' && !isTrustedEvent(claims.event_name)) {
    throw new OAuthError('invalid_target', `event ${claims.event_name} can never receive a production token`, 'untrusted_event');
  }
  update((r) => ({ ...r, rule: decision.rule.name, context: decision.context }));

  const scope = resolveScope(request.scope, decision.rule.permissions);
  if (!scope.ok) {
    throw new OAuthError('invalid_scope', `site "${request.site}": rule "${decision.rule.name}": ${scope.description}`, 'invalid_scope');
  }

  let key;
  try {
    key = deps.keys.active();
  } catch {
    throw unavailable('the signing key', 'keys_unavailable');
  }
  const minted = await mintAccessToken(key, {
    issuer: deps.issuer,
    audience: decision.tokenAudience ?? deps.tokenAudience,
    site: request.site,
    org: decision.org,
    scope: scope.scope,
    context: decision.context,
    ttlSeconds: decision.rule.maxTtl,
    actor: {
      iss: claims.iss,
      repository: claims.repository,
      repository_id: claims.repository_id,
      run_id: claims.run_id,
      run_attempt: claims.run_attempt,
      workflow_ref: claims.job_workflow_ref ?? claims.workflow_ref,
      sha: claims.sha,
      event_name: claims.event_name,
      ref: claims.ref,
    },
    now,
  });
  update((r) => ({
    ...r,
    result: 'granted',
    reason: 'granted',
    detail: `rule "${decision.rule.name}" (${decision.file}) granted ${decision.context} ${scope.scope}`,
    tokenJti: minted.jti,
    scope: scope.scope,
    expiresAt: minted.expiresAt,
  }));
  return {
    access_token: minted.token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: minted.expiresAt - now,
    scope: scope.scope,
    site: request.site,
    context: decision.context,
    rule: decision.rule.name,
  };
}
