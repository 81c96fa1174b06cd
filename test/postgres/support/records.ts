/** Audit records as the token endpoint writes them: a grant of a minted token, or a denial. */
import { randomUUID } from 'node:crypto';
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
