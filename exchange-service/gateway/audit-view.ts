/** `deploy-sts audit`: gateway calls shown with the token endpoint's decisions, newest first. */
import type { StoredGatewayAudit } from '../storage/gateway-types.js';
import type { StoredAudit } from '../storage/types.js';

export type AuditEntry = ({ kind: 'token' } & StoredAudit) | ({ kind: 'gateway' } & StoredGatewayAudit);

/** Both logs merged by time (newest first), at most `limit` entries. */
export function mergeAudit(token: StoredAudit[], gateway: StoredGatewayAudit[], limit: number): AuditEntry[] {
  const entries: AuditEntry[] = [
    ...token.map((r) => ({ kind: 'token' as const, ...r })),
    ...gateway.map((r) => ({ kind: 'gateway' as const, ...r })),
  ];
  entries.sort((a, b) => b.time - a.time || (a.kind === b.kind ? b.id - a.id : a.kind === 'gateway' ? -1 : 1));
  return entries.slice(0, limit);
}

/**
 * What became of a gateway call: forwarded (and the platform's status; when it then failed — a deadline, an abort, a
 * cut answer — the status the client got and why), or refused (status, reason), with its sizes.
 */
export function gatewayOutcome(r: StoredGatewayAudit): string {
  const failed = r.reason !== 'ok' ? `, then ${r.status} ${r.reason}` : '';
  const outcome = r.result === 'forwarded' ? `→ ${r.platform} ${r.upstreamStatus ?? '-'}${failed}` : `${r.status} ${r.reason}${r.detail ? `: ${r.detail}` : ''}`;
  return `${outcome}  in ${r.bytesIn} B, out ${r.bytesOut} B  jti ${r.tokenJti ?? '-'}`;
}
