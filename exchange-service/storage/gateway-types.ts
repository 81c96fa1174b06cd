/**
 * What the deploy gateway keeps in the configured storage (SQLite or PostgreSQL, so every replica sees it):
 * stored platform credentials (sealed by the credentials module, opaque here), the deploys the gateway saw created
 * (so any replica serves any step of a deploy), and the gateway's own append-only audit log.
 */
import type { Context } from '../policy/types.js';

/** How a stored credential's secret is kept: as given, or sealed with AES-256-GCM under the key-encryption key. */
export type CredentialEncryption = 'none' | 'aes-256-gcm';

export interface StoredCredential {
  name: string;
  /** The secret, or its sealed form (see `encryption`). Never logged, never printed. */
  secret: string;
  encryption: CredentialEncryption;
  /** Unix seconds. */
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number | null;
}

/** A credential as listed: everything but the secret. */
export type CredentialInfo = Omit<StoredCredential, 'secret'>;

/** A deploy created through the gateway. */
export interface GatewayDeploy {
  platform: string;
  deployId: string;
  /** The deploy-sts site slug whose token created it. */
  site: string;
  /** The platform's site id it belongs to (Netlify: the site UUID). */
  upstreamSiteId: string;
  context: Context;
  tokenJti: string;
  createdAt: number;
}

/**
 * forwarded: sent upstream (it may have reached the platform: also when it then failed, e.g. `reason` timeout);
 * answered: answered by the gateway itself (a synthetic answer); refused: neither, nothing reached the platform.
 */
export type GatewayResult = 'forwarded' | 'answered' | 'refused';

/** One gateway call. Never a token or a credential. */
export interface GatewayAuditRecord {
  /** Unix seconds. */
  time: number;
  platform: string;
  /** The site slug of the token, once verified. */
  site: string | null;
  tokenJti: string | null;
  context: Context | null;
  method: string;
  /** The route's stable name (e.g. `deploy.create`), or the path pattern for refused unknown routes. */
  route: string;
  deployId: string | null;
  result: GatewayResult;
  /** Stable machine reason: `ok`, `route_not_allowed`, `bad_token`, `wrong_site`, ... */
  reason: string;
  /** The status the client got. */
  status: number;
  /** Netlify's status, when forwarded and answered. */
  upstreamStatus: number | null;
  /** Request body bytes sent upstream, response body bytes sent to the client. */
  bytesIn: number;
  bytesOut: number;
  clientIp: string | null;
  /** The refusal message or a short note. */
  detail: string;
}

export interface StoredGatewayAudit extends GatewayAuditRecord {
  id: number;
}

export interface GatewayStorage {
  /** Create or replace; resolves whether it existed before. */
  putCredential(credential: { name: string; secret: string; encryption: CredentialEncryption; now: number }): Promise<'created' | 'replaced'>;
  getCredential(name: string): Promise<StoredCredential | undefined>;
  /**
   * What every gateway call reads, in one statement (one read transaction in SQLite, one round trip to PostgreSQL):
   * whether the token `jti` is revoked, and the stored credential `credential` (undefined when absent or not asked).
   */
  readCall(jti: string, credential: string | undefined): Promise<{ revoked: boolean; credential: StoredCredential | undefined }>;
  listCredentials(): Promise<CredentialInfo[]>;
  /** Resolves false when there was no such credential. */
  removeCredential(name: string): Promise<boolean>;
  /** Note a use (for `credentials list`). */
  touchCredential(name: string, at: number): Promise<void>;
  /** Record a deploy the gateway saw created; durable before it resolves. Idempotent for the same deploy. */
  recordDeploy(deploy: GatewayDeploy): Promise<void>;
  findDeploy(platform: string, deployId: string): Promise<GatewayDeploy | undefined>;
  /**
   * Count one more deploy creation for token `jti` unless it has made `limit` already: resolves the new count, or
   * undefined when the limit is reached (nothing counted). Atomic across replicas (concurrent creations with one
   * token never pass the limit together); durable before it resolves; the count is pruned once `expiresAt` passes.
   */
  takeDeploySlot(jti: string, limit: number, expiresAt: number): Promise<number | undefined>;
  /**
   * Durable before it resolves. `before-answer` (default): the caller waits for it before answering (a refusal).
   * `after-answer`: the call was already answered and nobody waits; the storage may commit it with later rows
   * (SQLite: within GATEWAY_AUDIT_WITHIN_MS; PostgreSQL: at once).
   */
  appendGatewayAudit(record: GatewayAuditRecord, timing?: 'before-answer' | 'after-answer'): Promise<void>;
  listGatewayAudit(filter: { site?: string; since?: number; limit?: number }): Promise<StoredGatewayAudit[]>;
}

export const GATEWAY_AUDIT_COLUMNS = [
  'time', 'platform', 'site', 'token_jti', 'context', 'method', 'route', 'deploy_id', 'result', 'reason', 'status',
  'upstream_status', 'bytes_in', 'bytes_out', 'client_ip', 'detail',
] as const;

type Value = string | number | null;
type Row = Record<string, Value | undefined>;
const num = (v: Value | undefined): number => Number(v);
const numOrNull = (v: Value | undefined): number | null => (v === null || v === undefined ? null : Number(v));
const text = (v: Value | undefined): string | null => (v === null || v === undefined ? null : String(v));

export function gatewayAuditParams(r: GatewayAuditRecord): Value[] {
  return [
    r.time, r.platform, r.site, r.tokenJti, r.context, r.method, r.route, r.deployId, r.result, r.reason, r.status,
    r.upstreamStatus, r.bytesIn, r.bytesOut, r.clientIp, r.detail,
  ];
}

export function gatewayAuditFromRow(row: Row): StoredGatewayAudit {
  return {
    id: num(row.id),
    time: num(row.time),
    platform: String(row.platform),
    site: text(row.site),
    tokenJti: text(row.token_jti),
    context: text(row.context) as Context | null,
    method: String(row.method),
    route: String(row.route),
    deployId: text(row.deploy_id),
    result: row.result as GatewayResult,
    reason: String(row.reason),
    status: num(row.status),
    upstreamStatus: numOrNull(row.upstream_status),
    bytesIn: num(row.bytes_in),
    bytesOut: num(row.bytes_out),
    clientIp: text(row.client_ip),
    detail: String(row.detail),
  };
}

/** The answer of READ_CALL_SQL (`?` or `$n` placeholders: jti, then the credential name). */
export function readCallFromRow(row: Row): { revoked: boolean; credential: StoredCredential | undefined } {
  return { revoked: Number(row.revoked) === 1, credential: row.name === null || row.name === undefined ? undefined : credentialFromRow(row) };
}

/** The revocation flag and the credential row of one gateway call, in one statement; `$1`: jti, `$2`: credential name. */
export const READ_CALL_SQL = `SELECT CASE WHEN EXISTS (SELECT 1 FROM revoked WHERE jti = $1) THEN 1 ELSE 0 END AS revoked,
  c.name, c.secret, c.encryption, c.created_at, c.updated_at, c.last_used_at
  FROM (SELECT 1 AS one) AS call LEFT JOIN credentials c ON c.name = $2`;

/** takeDeploySlot's statement (`$1` jti, `$2` expires at, `$3` limit): RETURNING no row once the limit is reached. */
export const TAKE_DEPLOY_SLOT_SQL = `INSERT INTO gateway_token_deploys (token_jti, created, expires_at) VALUES ($1, 1, $2)
  ON CONFLICT (token_jti) DO UPDATE SET created = gateway_token_deploys.created + 1 WHERE gateway_token_deploys.created < $3
  RETURNING created`;

export function credentialFromRow(row: Row): StoredCredential {
  return {
    name: String(row.name),
    secret: String(row.secret),
    encryption: row.encryption as CredentialEncryption,
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    lastUsedAt: numOrNull(row.last_used_at),
  };
}

export function deployFromRow(row: Row): GatewayDeploy {
  return {
    platform: String(row.platform),
    deployId: String(row.deploy_id),
    site: String(row.site),
    upstreamSiteId: String(row.upstream_site_id),
    context: row.context as Context,
    tokenJti: String(row.token_jti),
    createdAt: num(row.created_at),
  };
}
