/**
 * Shared by the adversarial suites: start a service for one suite, and assert a refusal the way every case must —
 * the right status and RFC error code, no token in the answer, and exactly one denial in the audit log.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { StoredAudit } from '../../exchange-service/storage/types.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { startService, tempDir, type ServiceOptions, type TestService } from '../helpers/service.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Rate limits off: these suites send hundreds of exchanges from one IP and one repository. */
export const NO_RATE_LIMITS = { DEPLOY_STS_RATE_LIMIT_IP: '0', DEPLOY_STS_RATE_LIMIT_REPOSITORY: '0', DEPLOY_STS_WATCH_POLICIES: '0' };

export interface Suite {
  issuer: TestIssuer;
  svc: TestService;
  stop(): Promise<void>;
}

/** A test issuer and a service trusting it (example policies unless `policies` names a directory). */
export async function startSuite(options: Partial<ServiceOptions> = {}): Promise<Suite> {
  const issuer = await startIssuer();
  const svc = await startService({ issuer: issuer.url, ...options, env: { ...NO_RATE_LIMITS, ...options.env } });
  return {
    issuer,
    svc,
    async stop() {
      await svc.stop();
      await issuer.close();
    },
  };
}

/** Write policy files (name → YAML) into a fresh temp directory. */
export function policyDir(files: Record<string, string>): string {
  const dir = tempDir('deploy-sts-policies-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export async function lastAuditId(svc: TestService): Promise<number> {
  const [row] = await svc.service.storage.listAudit({ limit: 1 });
  return row?.id ?? 0;
}

/** Audit rows written after `id`, oldest first. */
export async function auditAfter(svc: TestService, id: number): Promise<StoredAudit[]> {
  const rows = await svc.service.storage.listAudit({ limit: 10_000 });
  return rows.filter((r) => r.id > id).sort((a, b) => a.id - b.id);
}

export interface Expected {
  status: number;
  error: string;
  /** The audit record's machine reason. */
  reason?: string;
  /** Matched against error_description. */
  description?: RegExp;
}

/**
 * Send one request and assert it was refused: status, RFC 6749 error code, no token, a description, and exactly
 * one new audit record — a denial without a minted jti. Returns the answer and that record.
 */
export async function expectRefused(
  svc: TestService,
  send: () => Promise<Answer>,
  expected: Expected,
): Promise<{ answer: Answer; audit: StoredAudit }> {
  const before = await lastAuditId(svc);
  const answer = await send();
  expect(answer.status, JSON.stringify(answer.body)).toBe(expected.status);
  expect(answer.body.error, JSON.stringify(answer.body)).toBe(expected.error);
  expect(answer.body).not.toHaveProperty('access_token');
  expect(answer.body).not.toHaveProperty('refresh_token');
  expect(typeof answer.body.error_description).toBe('string');
  if (expected.description) expect(String(answer.body.error_description)).toMatch(expected.description);
  const rows = await auditAfter(svc, before);
  expect(rows, 'exactly one audit record per request').toHaveLength(1);
  const audit = rows[0]!;
  expect(audit).toMatchObject({ result: 'denied', tokenJti: null });
  if (expected.reason) expect(audit.reason).toBe(expected.reason);
  expect(audit.detail).toBe(answer.body.error_description);
  return { answer, audit };
}

/** The same for an answer that must be a grant: 200, a token, and the granted audit record carrying its jti. */
export async function expectGranted(svc: TestService, send: () => Promise<Answer>): Promise<{ answer: Answer; audit: StoredAudit }> {
  const before = await lastAuditId(svc);
  const answer = await send();
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(typeof answer.body.access_token).toBe('string');
  const rows = await auditAfter(svc, before);
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ result: 'granted', reason: 'granted' });
  return { answer, audit: rows[0]! };
}

/** Seconds since the epoch, now. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
