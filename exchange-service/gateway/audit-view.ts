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

export function gatewayLine(r: StoredGatewayAudit): string {
  const what = `${r.method} ${r.route}${r.deployId ? ` deploy ${r.deployId}` : ''}`;
  const outcome = r.result === 'forwarded' ? `→ ${r.platform} ${r.upstreamStatus ?? '-'}` : `${r.status} ${r.reason}${r.detail ? `: ${r.detail}` : ''}`;
  return `${new Date(r.time * 1000).toISOString()}  ${r.result.padEnd(9)} ${(r.site ?? '-').padEnd(16)} ${(r.context ?? '-').padEnd(10)} ${what}  ${outcome}  in ${r.bytesIn} B, out ${r.bytesOut} B  jti ${r.tokenJti ?? '-'}`;
}
