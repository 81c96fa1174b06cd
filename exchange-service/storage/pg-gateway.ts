/** The gateway's tables in PostgreSQL (migration and statements), shared by every replica; see gateway-types.ts. */
import type pg from 'pg';
import {
  GATEWAY_AUDIT_COLUMNS, READ_CALL_SQL, TAKE_DEPLOY_SLOT_SQL, credentialFromRow, deployFromRow, gatewayAuditFromRow, gatewayAuditParams, readCallFromRow,
  type GatewayStorage,
} from './gateway-types.js';

export const PG_GATEWAY_MIGRATION = `
  CREATE TABLE credentials (
    name TEXT PRIMARY KEY, secret TEXT NOT NULL,
    encryption TEXT NOT NULL CHECK (encryption IN ('none', 'aes-256-gcm')),
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_used_at BIGINT);
  CREATE TABLE gateway_deploys (
    platform TEXT NOT NULL, deploy_id TEXT NOT NULL, site TEXT NOT NULL, upstream_site_id TEXT NOT NULL,
    context TEXT NOT NULL, token_jti TEXT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (platform, deploy_id));
  CREATE TABLE gateway_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time BIGINT NOT NULL, platform TEXT NOT NULL, site TEXT,
    token_jti TEXT, context TEXT, method TEXT NOT NULL, route TEXT NOT NULL, deploy_id TEXT,
    result TEXT NOT NULL CHECK (result IN ('forwarded', 'answered', 'refused')), reason TEXT NOT NULL,
    status INTEGER NOT NULL, upstream_status INTEGER, bytes_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL,
    client_ip TEXT, detail TEXT NOT NULL);
  CREATE INDEX gateway_audit_site_time ON gateway_audit (site, time);
  CREATE INDEX gateway_audit_time ON gateway_audit (time);
  CREATE TRIGGER gateway_audit_no_change BEFORE UPDATE OR DELETE ON gateway_audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER gateway_audit_no_truncate BEFORE TRUNCATE ON gateway_audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();`;

/** Migration 3: how many deploys each gateway token has created (the preview tokens' cap). */
export const PG_GATEWAY_TOKEN_DEPLOYS_MIGRATION = `
  CREATE TABLE gateway_token_deploys (token_jti TEXT PRIMARY KEY, created INTEGER NOT NULL, expires_at BIGINT NOT NULL);
  CREATE INDEX gateway_token_deploys_expiry ON gateway_token_deploys (expires_at);`;

type Query = (sql: string, params?: unknown[], name?: string) => Promise<pg.QueryResult<Record<string, string | number | null>>>;

const INSERT_AUDIT = `INSERT INTO gateway_audit (${GATEWAY_AUDIT_COLUMNS.join(', ')}) VALUES (${GATEWAY_AUDIT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;

export function pgGatewayStorage(query: Query): GatewayStorage {
  return {
    async putCredential({ name, secret, encryption, now }) {
      // xmax = 0 only for a freshly inserted row.
      const result = await query(
        `INSERT INTO credentials (name, secret, encryption, created_at, updated_at, last_used_at) VALUES ($1, $2, $3, $4, $4, NULL)
         ON CONFLICT (name) DO UPDATE SET secret = EXCLUDED.secret, encryption = EXCLUDED.encryption, updated_at = EXCLUDED.updated_at
         RETURNING (xmax = 0) AS inserted`,
        [name, secret, encryption, now],
      );
      return (result.rows[0] as { inserted?: unknown } | undefined)?.inserted ? 'created' : 'replaced';
    },
    async getCredential(name) {
      const result = await query('SELECT * FROM credentials WHERE name = $1', [name], 'deploy_sts_get_credential');
      return result.rows[0] ? credentialFromRow(result.rows[0]) : undefined;
    },
    async readCall(jti, credential) {
      const result = await query(READ_CALL_SQL, [jti, credential ?? null], 'deploy_sts_gateway_read_call');
      return readCallFromRow(result.rows[0]!);
    },
    async listCredentials() {
      const result = await query('SELECT name, encryption, created_at, updated_at, last_used_at FROM credentials ORDER BY name');
      return result.rows.map((row) => {
        const { secret: _none, ...info } = credentialFromRow({ ...row, secret: '' });
        return info;
      });
    },
    async removeCredential(name) {
      const result = await query('DELETE FROM credentials WHERE name = $1', [name]);
      return result.rowCount === 1;
    },
    async touchCredential(name, at) {
      await query('UPDATE credentials SET last_used_at = $1 WHERE name = $2 AND (last_used_at IS NULL OR last_used_at < $1)', [at, name]);
    },
    async recordDeploy(d) {
      await query(
        `INSERT INTO gateway_deploys (platform, deploy_id, site, upstream_site_id, context, token_jti, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [d.platform, d.deployId, d.site, d.upstreamSiteId, d.context, d.tokenJti, d.createdAt],
      );
    },
    async takeDeploySlot(jti, limit, expiresAt) {
      // One statement: the row lock of ON CONFLICT serialises concurrent creations with one token, on any replica.
      const result = await query(TAKE_DEPLOY_SLOT_SQL, [jti, expiresAt, limit], 'deploy_sts_take_deploy_slot');
      return result.rows[0] === undefined ? undefined : Number(result.rows[0].created);
    },
    async findDeploy(platform, deployId) {
      const result = await query('SELECT * FROM gateway_deploys WHERE platform = $1 AND deploy_id = $2', [platform, deployId], 'deploy_sts_find_deploy');
      return result.rows[0] ? deployFromRow(result.rows[0]) : undefined;
    },
    async appendGatewayAudit(record) {
      // Every row at once, whatever its timing: each replica's pool commits rows concurrently.
      await query(INSERT_AUDIT, gatewayAuditParams(record), 'deploy_sts_append_gateway_audit');
    },
    async listGatewayAudit({ site, since = 0, limit = 100 }) {
      const result = site
        ? await query('SELECT * FROM gateway_audit WHERE site = $1 AND time >= $2 ORDER BY id DESC LIMIT $3', [site, since, limit])
        : await query('SELECT * FROM gateway_audit WHERE time >= $1 ORDER BY id DESC LIMIT $2', [since, limit]);
      return result.rows.map(gatewayAuditFromRow);
    },
  };
}
