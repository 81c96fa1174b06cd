/** Audit records as the token endpoint writes them (a grant of a minted token, or a denial), and the gateway's. */
import { randomUUID } from 'node:crypto';
import type { GatewayAuditRecord } from '../../../exchange-service/storage/gateway-types.js';
import type { AuditRecord } from '../../../exchange-service/storage/types.js';

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function grantRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  const time = overrides.time ?? nowSeconds();
  return {
    time,
    result: 'granted',
    site: 'docs',
    rule: 'main-branch',
    context: 'production',
    reason: 'granted',
    detail: 'deploy to docs (production)',
    repository: 'acme/docs',
    repositoryId: '892043217',
    eventName: 'push',
    ref: 'refs/heads/main',
    workflowRef: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
    environment: 'production',
    runId: '7001234567',
    subjectJti: randomUUID(),
    tokenJti: randomUUID(),
    scope: 'deploy',
    expiresAt: time + 900,
    clientIp: '127.0.0.1',
    ...overrides,
  };
}

export function denialRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return grantRecord({
    result: 'denied',
    rule: null,
    context: null,
    reason: 'no_rule_matched',
    detail: 'no rule of site docs matches',
    tokenJti: null,
    scope: null,
    expiresAt: null,
    ...overrides,
  });
}

/** A gateway audit row: a forwarded call of a preview token (see the gateway's audit log). */
export function gatewayAuditRecord(overrides: Partial<GatewayAuditRecord> = {}): GatewayAuditRecord {
  return {
    time: nowSeconds(), platform: 'netlify', site: 'docs', tokenJti: 'jti-1', context: 'preview', method: 'PUT', route: 'deploy.upload-file',
    deployId: null, result: 'forwarded', reason: 'ok', status: 200, upstreamStatus: 200, bytesIn: 1, bytesOut: 1, clientIp: '127.0.0.1', detail: '',
    ...overrides,
  };
}
