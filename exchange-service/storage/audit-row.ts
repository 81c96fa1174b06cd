/**
 * The audit log's row shape, shared by both storage backends: the column list, the parameters of an insert, and the
 * mapping of a row back to a record (numbers may come back as strings from PostgreSQL's BIGINT).
 */
import type { AuditRecord, IssuedToken, StoredAudit } from './types.js';

export const AUDIT_COLUMNS = [
  'time', 'result', 'site', 'rule', 'context', 'reason', 'detail', 'repository', 'repository_id', 'event_name', 'ref',
  'workflow_ref', 'environment', 'run_id', 'subject_jti', 'token_jti', 'scope', 'expires_at', 'client_ip',
] as const;

export type Row = Record<string, string | number | null>;

const num = (value: string | number | null | undefined): number => Number(value);
const text = (value: string | number | null | undefined): string | null => (value === null || value === undefined ? null : String(value));

export function auditParams(r: AuditRecord): (string | number | null)[] {
  return [
    r.time, r.result, r.site, r.rule, r.context, r.reason, r.detail, r.repository, r.repositoryId, r.eventName, r.ref,
    r.workflowRef, r.environment, r.runId, r.subjectJti, r.tokenJti, r.scope, r.expiresAt, r.clientIp,
  ];
}

export function auditFromRow(row: Row): StoredAudit {
  return {
    id: num(row.id),
    time: num(row.time),
    result: row.result as StoredAudit['result'],
    site: text(row.site),
    rule: text(row.rule),
    context: text(row.context) as StoredAudit['context'],
    reason: String(row.reason),
    detail: String(row.detail),
    repository: text(row.repository),
    repositoryId: text(row.repository_id),
    eventName: text(row.event_name),
    ref: text(row.ref),
    workflowRef: text(row.workflow_ref),
    environment: text(row.environment),
    runId: text(row.run_id),
    subjectJti: text(row.subject_jti),
    tokenJti: text(row.token_jti),
    scope: text(row.scope),
    expiresAt: row.expires_at === null ? null : num(row.expires_at),
    clientIp: text(row.client_ip),
  };
}

export function tokenFromRow(row: Row): IssuedToken {
  return {
    jti: String(row.token_jti),
    site: String(row.site),
    rule: String(row.rule),
    context: row.context as IssuedToken['context'],
    scope: String(row.scope),
    repository: String(row.repository),
    issuedAt: num(row.time),
    expiresAt: num(row.expires_at),
    revoked: row.revoked !== null && row.revoked !== undefined,
  };
}
