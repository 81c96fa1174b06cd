import type { AuditReason } from '../denial.js';
import type { Context } from '../policy/types.js';
import type { GatewayStorage } from './gateway-types.js';

export type AuditResult = 'granted' | 'denied';

/** One decision of the token endpoint. Never holds a token. */
export interface AuditRecord {
  /** Unix seconds. */
  time: number;
  result: AuditResult;
  site: string | null;
  rule: string | null;
  context: Context | null;
  /** Stable machine reason: `granted` or a DenialReason (`no_rule_matched`, `replay`, `bad_signature`, ...). */
  reason: AuditReason;
  /** The error_description given to the client, or for grants a summary. */
  detail: string;
  /** Identifying claims of the subject token, when it could be read (only verified values are trusted). */
  repository: string | null;
  repositoryId: string | null;
  eventName: string | null;
  ref: string | null;
  workflowRef: string | null;
  environment: string | null;
  runId: string | null;
  subjectJti: string | null;
  /** The minted token's jti (grants only), its scope and expiry. */
  tokenJti: string | null;
  scope: string | null;
  expiresAt: number | null;
  clientIp: string | null;
}

/** A row read back: its reason as written (a row written by another version may hold a reason this one lacks). */
export interface StoredAudit extends Omit<AuditRecord, 'reason'> {
  id: number;
  reason: string;
}

export interface IssuedToken {
  jti: string;
  site: string;
  rule: string;
  context: Context;
  scope: string;
  repository: string;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
}

/** What became of a verified subject token's jti when its exchange was recorded (see Storage.recordExchange). */
export type JtiUse = 'first' | 'replay' | 'unavailable';

/** The jti of a verified subject token, kept in the replay cache until the token expires. */
export interface SubjectJti {
  issuer: string;
  jti: string;
  /** Unix seconds: the token's exp. */
  expiresAt: number;
}

/**
 * Everything the service keeps. SQLite (embedded default) and PostgreSQL implement it.
 * Every method may reject: callers fail closed (503, no token).
 */
export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Record the first use of a subject token's jti until `expiresAt`. Resolves true when this call was the first,
   * false when it was seen before (a replay). Atomic: two concurrent calls with one jti, exactly one true. A token
   * is known by its issuer, jti and expiry (a replay is the same signed token, so all three are the same): the cache
   * is keyed by all three, expiry first (sqlite.ts migration 5, pg-migrations.ts migration 4).
   */
  consumeJti(issuer: string, jti: string, expiresAt: number): Promise<boolean>;
  /** Append a decision to the audit log. A grant's record is durable before this resolves. */
  appendAudit(record: AuditRecord): Promise<void>;
  /**
   * The writes of one exchange of a verified subject token: consume its jti (exactly once, as consumeJti) and append
   * the audit record that `recordFor` gives for what became of it — `first`, `replay`, or `unavailable` when the
   * replay cache could not take it (the record then tells that failure). `recordFor` is called exactly once, after
   * the jti is checked and before the record is written. SQLite runs both inserts as one write of the batch (one
   * commit, one sync). Resolves with the use once the record is durable, as appendAudit; rejects when the record
   * could not be written.
   */
  recordExchange(subject: SubjectJti, recordFor: (use: JtiUse) => AuditRecord): Promise<JtiUse>;
  /** Mark a minted token revoked until its expiry (idempotent). */
  revoke(jti: string, expiresAt: number): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
  /** Tokens granted (from the audit log) that have not expired, newest first. */
  listTokens(filter: { site?: string; now: number; limit?: number }): Promise<IssuedToken[]>;
  /** Look up one granted token by jti (for revoke-by-jti from the CLI). */
  findToken(jti: string): Promise<IssuedToken | undefined>;
  listAudit(filter: { site?: string; since?: number; limit?: number }): Promise<StoredAudit[]>;
  /** One audit record by its id (`deploy-sts policy explain --audit-id`). */
  findAudit(id: number): Promise<StoredAudit | undefined>;
  /** Delete replay and revocation rows whose expiry has passed; returns how many. Audit rows are kept. */
  prune(now: number): Promise<number>;
  /**
   * Cheap readiness probe for /readyz: throws, saying why, when the storage cannot take an exchange now (closed, not
   * reachable; SQLite: a WAL sync that has not finished within SYNC_STALL_MS).
   */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The deploy gateway's credentials, deploys and audit log (storage/gateway-types.ts). */
  readonly gateway: GatewayStorage;
}
