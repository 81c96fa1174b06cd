/**
 * The audit record of one `POST /token` request, built in one place. Whoever answers the request — the exchange,
 * or the HTTP layer for a request refused before the exchange ran (a wrong method, an oversized body, the address
 * limit) — fills an AuditDraft with what it learnt and turns it into the record with `grantedRecord` or
 * `deniedRecord`. Never holds a token: a description is passed through `redactTokens` first.
 */
import { isDenialReason } from '../denial.js';
import { redactTokens, type OAuthError } from '../errors.js';
import type { GitHubClaims } from '../oidc/claims.js';
import type { Context } from '../policy/types.js';
import type { AuditRecord } from '../storage/types.js';

/** What is known about a request so far; every field but time and client address may still be missing. */
export interface AuditDraft {
  /** Unix seconds. */
  time: number;
  clientIp: string | null;
  /** The site the request named, once the request parsed. */
  site?: string;
  /** The subject token's claims, once its signature verified (only verified values are recorded). */
  claims?: GitHubClaims;
  /** The rule that matched and the context it grants. */
  rule?: string;
  context?: Context;
}

export interface Grant {
  detail: string;
  tokenJti: string;
  scope: string;
  expiresAt: number;
}

/**
 * The record: the draft's fields, then the outcome's. One object literal, keys in the order records always had:
 * for speed, not a draft copy spread into a second object (two 13- and 19-key objects per exchange).
 */
function record(
  draft: AuditDraft,
  result: AuditRecord['result'],
  reason: AuditRecord['reason'],
  detail: string,
  tokenJti: string | null,
  scope: string | null,
  expiresAt: number | null,
): AuditRecord {
  const c = draft.claims;
  return {
    time: draft.time,
    site: draft.site ?? null,
    rule: draft.rule ?? null,
    context: draft.context ?? null,
    repository: c?.repository ?? null,
    repositoryId: c?.repository_id ?? null,
    eventName: c?.event_name ?? null,
    ref: c?.ref ?? null,
    workflowRef: c ? (c.job_workflow_ref ?? c.workflow_ref ?? null) : null,
    environment: c?.environment ?? null,
    runId: c?.run_id ?? null,
    subjectJti: c?.jti ?? null,
    clientIp: draft.clientIp,
    result,
    reason,
    detail,
    tokenJti,
    scope,
    expiresAt,
  };
}

export function grantedRecord(draft: AuditDraft, grant: Grant): AuditRecord {
  return record(draft, 'granted', 'granted', grant.detail, grant.tokenJti, grant.scope, grant.expiresAt);
}

/** A refusal of /token; its reason is always a DenialReason (`unauthenticated` belongs to /introspect alone). */
export function deniedRecord(draft: AuditDraft, error: OAuthError): AuditRecord {
  const reason = isDenialReason(error.reason) ? error.reason : 'internal_error';
  return record(draft, 'denied', reason, redactTokens(error.description), null, null, null);
}
