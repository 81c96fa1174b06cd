/**
 * One token exchange, start to end: parse → verify the GitHub token → evaluate the site's policy → check the scope →
 * mint → accept the jti once and write the audit record, in one storage write → answer. Every decision, granted or
 * denied, is in the audit log before the answer leaves; if that write fails the answer is a 503 and no token is
 * returned. The jti of every verified token (granted or denied by policy) is consumed; a replay is refused whatever
 * the policy says, and its token, already minted, is dropped unseen. One write instead of two (the replay insert,
 * then the audit record) halves the commits per exchange and the event-loop turns an answer waits for.
 */
import { ACCESS_TOKEN_TYPE } from '../shared/wire.js';
import { mintAccessToken } from './access-token/mint.js';
import { OAuthError, rateLimited, unavailable } from './errors.js';
import type { KeyRing } from './keys/key-ring.js';
import type { GitHubClaims } from './oidc/claims.js';
import { isTrustedEvent } from './oidc/claims.js';
import { MAX_AGE_SECONDS } from './oidc/verify-oidc.js';
import { evaluate, grantOf } from './policy/match.js';
import { resolveScope } from './policy/permissions.js';
import type { PolicySet } from './policy/types.js';
import { gatewayAudience } from './policy/upstream.js';
import type { AuditRecord, JtiUse, Storage, SubjectJti } from './storage/types.js';
import { deniedRecord, grantedRecord, type AuditDraft } from './token-exchange/audit.js';
import { parseTokenRequest, type TokenRequest } from './token-exchange/request.js';
import type { TokenResponse } from './token-exchange/response.js';

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

/** The answer, or the error to answer with, and the decision as recorded (for metrics and logs; never a token). */
export type ExchangeOutcome =
  | { granted: true; response: TokenResponse; audit: AuditRecord }
  | {
      granted: false;
      error: OAuthError;
      audit: AuditRecord;
      /** Why the storage could not record the exchange (`audit_unavailable`), for the operator's log: its own error. */
      storageFailure?: unknown;
    };

/**
 * Run one exchange. Never throws: the outcome carries either the response or the OAuthError to answer with.
 * A failure to write the audit record turns any outcome into a 503.
 */
export async function exchange(body: unknown, deps: ExchangeDeps, clientIp: string | null): Promise<ExchangeOutcome> {
  // Every field present from the start: for speed, the draft keeps one shape instead of growing as it is filled.
  const draft: AuditDraft = { time: deps.now(), clientIp, site: undefined, claims: undefined, rule: undefined, context: undefined };
  // Once the token is verified, `subject` names its jti: whatever the decision, it is consumed with the audit
  // record, and a replay overrides the decision.
  let subject: SubjectJti | undefined;
  let outcome: ExchangeOutcome;
  try {
    // Parsing and verifying — the one step that may wait — are here; the rest of the decision is synchronous (decide),
    // which spares every exchange a second async function and its promises.
    const request = parseTokenRequest(body);
    draft.site = request.site;
    const claims = await deps.verify(request.subjectToken);
    draft.claims = claims;
    // Kept until the token expires, or until it is too old to verify if that comes first (an exp far in the future
    // would keep its row for ever); both come from the signed claims, so a replay meets the same key.
    subject = { issuer: claims.iss, jti: claims.jti, expiresAt: Math.min(claims.exp, claims.iat + MAX_AGE_SECONDS) };
    outcome = decide(request, claims, deps, draft);
  } catch (thrown) {
    const error = thrown instanceof OAuthError ? thrown : new OAuthError('server_error', 'the exchange failed unexpectedly; no token was issued', 'internal_error');
    outcome = { granted: false, error, audit: deniedRecord(draft, error) };
  }
  try {
    if (subject === undefined) {
      await deps.storage.appendAudit(outcome.audit);
      return outcome;
    }
    const jti = subject.jti;
    let final: ExchangeOutcome | undefined;
    // Called once, when the jti has been checked and before the record is written.
    const decideWith = (use: JtiUse): AuditRecord => {
      if (use === 'replay') final = refusalOf(draft, replayError(jti));
      else if (use === 'unavailable') final = refusalOf(draft, unavailable('the replay cache', 'storage_unavailable'));
      else {
        // The repository's bucket is charged only once the jti is accepted: replaying someone's used token must not
        // spend it. (The token is then spent even when the answer is 429: the Action fetches a fresh one per attempt.)
        const claims = draft.claims!;
        const admitted = deps.admitRepository?.(claims.repository_id);
        final =
          admitted && !admitted.allowed
            ? refusalOf(draft, rateLimited(`repository ${claims.repository} (id ${claims.repository_id}) is over its exchange rate limit; retry in ${admitted.retryAfter} s`, admitted.retryAfter))
            : outcome;
      }
      return final.audit;
    };
    await deps.storage.recordExchange(subject, decideWith);
    return final!;
  } catch (failure) {
    const error = unavailable('the audit log', 'audit_unavailable');
    return { granted: false, error, audit: deniedRecord(draft, error), storageFailure: failure };
  }
}

/** A refusal at the jti or the repository limit is recorded as the request stood there: no rule, no context. */
const refusalOf = (draft: AuditDraft, error: OAuthError): ExchangeOutcome => ({
  granted: false, error, audit: deniedRecord({ time: draft.time, clientIp: draft.clientIp, site: draft.site, claims: draft.claims }, error),
});

const replayError = (jti: string) =>
  new OAuthError(
    'invalid_request',
    `subject_token: this token (jti ${jti}) was already exchanged; a GitHub OIDC token is accepted once — request a fresh one (core.getIDToken) for each exchange`,
    'replay',
  );

/**
 * Decide a parsed request whose token is verified, writing what it learns into `draft` as it goes; throws the
 * OAuthError of a denial.
 */
function decide(request: TokenRequest, claims: GitHubClaims, deps: ExchangeDeps, draft: AuditDraft): ExchangeOutcome {
  const now = draft.time;
  // A grant is decided without explanations; a denial is explained by the traced evaluation.
  const policies = deps.policies();
  const decision = grantOf(policies, request.site, claims) ?? evaluate(policies, request.site, claims);
  if (!decision.granted) throw new OAuthError('invalid_target', decision.description, decision.reason);
  // Defence in depth: the policy engine already refuses this; the token endpoint refuses it again.
  if (decision.context === 'production' && !isTrustedEvent(claims.event_name)) {
    throw new OAuthError('invalid_target', `event ${claims.event_name} can never receive a production token`, 'untrusted_event');
  }
  draft.rule = decision.rule.name;
  draft.context = decision.context;

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
  const minted = mintAccessToken(key, {
    issuer: deps.issuer,
    // A site deployed through the gateway: its tokens are for the gateway alone.
    audience: decision.upstream?.netlify ? gatewayAudience(deps.issuer, 'netlify') : (decision.tokenAudience ?? deps.tokenAudience),
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
  return {
    granted: true,
    response: {
      access_token: minted.token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: minted.expiresAt - now,
      scope: scope.scope,
      site: request.site,
      context: decision.context,
      rule: decision.rule.name,
    },
    audit: grantedRecord(draft, {
      detail: `rule "${decision.rule.name}" (${decision.file}) granted ${decision.context} ${scope.scope}`,
      tokenJti: minted.jti,
      scope: scope.scope,
      expiresAt: minted.expiresAt,
    }),
  };
}
