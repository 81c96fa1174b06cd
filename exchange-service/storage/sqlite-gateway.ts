/** The gateway's tables in the embedded SQLite storage (migration and statements); see gateway-types.ts. */
import type { StatementSync } from 'node:sqlite';
import {
  GATEWAY_AUDIT_COLUMNS, READ_CALL_SQL, TAKE_DEPLOY_SLOT_SQL, credentialFromRow, deployFromRow, gatewayAuditFromRow, gatewayAuditParams, readCallFromRow,
  type GatewayStorage,
} from './gateway-types.js';

export const SQLITE_GATEWAY_MIGRATION = `
  CREATE TABLE credentials (
    name TEXT PRIMARY KEY, secret TEXT NOT NULL,
    encryption TEXT NOT NULL CHECK (encryption IN ('none', 'aes-256-gcm')),
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_used_at INTEGER) WITHOUT ROWID;
  CREATE TABLE gateway_deploys (
    platform TEXT NOT NULL, deploy_id TEXT NOT NULL, site TEXT NOT NULL, upstream_site_id TEXT NOT NULL,
    context TEXT NOT NULL, token_jti TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, deploy_id)) WITHOUT ROWID;
  CREATE TABLE gateway_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, platform TEXT NOT NULL, site TEXT, token_jti TEXT,
    context TEXT, method TEXT NOT NULL, route TEXT NOT NULL, deploy_id TEXT,
    result TEXT NOT NULL CHECK (result IN ('forwarded', 'answered', 'refused')), reason TEXT NOT NULL,
    status INTEGER NOT NULL, upstream_status INTEGER, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
    client_ip TEXT, detail TEXT NOT NULL);
  CREATE INDEX gateway_audit_site_time ON gateway_audit (site, time);
  CREATE INDEX gateway_audit_time ON gateway_audit (time);
  CREATE TRIGGER gateway_audit_no_update BEFORE UPDATE ON gateway_audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER gateway_audit_no_delete BEFORE DELETE ON gateway_audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER gateway_audit_no_replace BEFORE INSERT ON gateway_audit
    WHEN EXISTS (SELECT 1 FROM gateway_audit WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`;

export interface SqliteAccess {
  /** A cached prepared statement. */
  stmt(sql: string): StatementSync;
  /**
   * Run `run` inside the group-commit writer; `durable`: answered once synced (under FULL); `withinMs`: committed
   * with the next commit, at the latest that many ms later (default: at the end of this event-loop turn).
   */
  submit<T>(run: () => T, durable: boolean, withinMs?: number): Promise<T>;
  /** Throws when the storage is closed or poisoned. */
  open(): void;
}

/**
 * The longest an audit row written after its call was answered waits to be committed (with other rows: a deploy's
 * uploads share one commit and one WAL sync instead of one each). A row written before its answer (a refusal) is
 * committed at the end of the event-loop turn, as every other write.
 */
export const GATEWAY_AUDIT_WITHIN_MS = 10;

/** The shared statements' PostgreSQL placeholders (`$1`, each wherever it appears) as SQLite's numbered ones (`?1`). */
const forSqlite = (sql: string) => sql.replace(/\$(\d+)/g, '?$1');
const READ_CALL_SQL_SQLITE = forSqlite(READ_CALL_SQL);
const TAKE_DEPLOY_SLOT_SQL_SQLITE = forSqlite(TAKE_DEPLOY_SLOT_SQL);

/** Migration 4: how many deploys each gateway token has created (the preview tokens' cap). */
export const SQLITE_GATEWAY_TOKEN_DEPLOYS_MIGRATION = `
  CREATE TABLE gateway_token_deploys (token_jti TEXT PRIMARY KEY, created INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX gateway_token_deploys_expiry ON gateway_token_deploys (expires_at);`;

const INSERT_AUDIT = `INSERT INTO gateway_audit (${GATEWAY_AUDIT_COLUMNS.join(', ')}) VALUES (${GATEWAY_AUDIT_COLUMNS.map(() => '?').join(', ')})`;

export function sqliteGatewayStorage({ stmt, submit, open }: SqliteAccess): GatewayStorage {
  return {
    async putCredential({ name, secret, encryption, now }) {
      open();
      return submit(() => {
        const existed = stmt('SELECT 1 AS x FROM credentials WHERE name = ?').get(name) !== undefined;
        stmt(
          `INSERT INTO credentials (name, secret, encryption, created_at, updated_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL)
           ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, encryption = excluded.encryption, updated_at = excluded.updated_at`,
        ).run(name, secret, encryption, now, now);
        return existed ? ('replaced' as const) : ('created' as const);
      }, true);
    },
    async getCredential(name) {
      open();
      const row = stmt('SELECT * FROM credentials WHERE name = ?').get(name);
      return row ? credentialFromRow(row as Record<string, string | number | null>) : undefined;
    },
    async readCall(jti, credential) {
      open();
      const row = stmt(READ_CALL_SQL_SQLITE).get(jti, credential ?? null);
      return readCallFromRow(row as Record<string, string | number | null>);
    },
    async listCredentials() {
      open();
      const rows = stmt('SELECT name, encryption, created_at, updated_at, last_used_at FROM credentials ORDER BY name').all();
      return rows.map((row) => {
        const { secret: _none, ...info } = credentialFromRow({ ...(row as Record<string, string | number | null>), secret: '' });
        return info;
      });
    },
    async removeCredential(name) {
      open();
      return submit(() => Number(stmt('DELETE FROM credentials WHERE name = ?').run(name).changes) === 1, true);
    },
    async touchCredential(name, at) {
      open();
      await submit(() => {
        stmt('UPDATE credentials SET last_used_at = ? WHERE name = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(at, name, at);
      }, false);
    },
    async recordDeploy(d) {
      open();
      await submit(() => {
        stmt(
          `INSERT INTO gateway_deploys (platform, deploy_id, site, upstream_site_id, context, token_jti, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        ).run(d.platform, d.deployId, d.site, d.upstreamSiteId, d.context, d.tokenJti, d.createdAt);
      }, true);
    },
    async takeDeploySlot(jti, limit, expiresAt) {
      open();
      return submit(() => {
        const row = stmt(TAKE_DEPLOY_SLOT_SQL_SQLITE).get(jti, expiresAt, limit) as { created: number } | undefined;
        return row === undefined ? undefined : Number(row.created);
      }, true);
    },
    async findDeploy(platform, deployId) {
      open();
      const row = stmt('SELECT * FROM gateway_deploys WHERE platform = ? AND deploy_id = ?').get(platform, deployId);
      return row ? deployFromRow(row as Record<string, string | number | null>) : undefined;
    },
    async appendGatewayAudit(record, timing = 'before-answer') {
      open();
      const params = gatewayAuditParams(record);
      await submit(() => {
        stmt(INSERT_AUDIT).run(...params);
      }, true, timing === 'after-answer' ? GATEWAY_AUDIT_WITHIN_MS : 0);
    },
    async listGatewayAudit({ site, since = 0, limit = 100 }) {
      open();
      const rows = site
        ? stmt('SELECT * FROM gateway_audit WHERE site = ? AND time >= ? ORDER BY id DESC LIMIT ?').all(site, since, limit)
        : stmt('SELECT * FROM gateway_audit WHERE time >= ? ORDER BY id DESC LIMIT ?').all(since, limit);
      return rows.map((row) => gatewayAuditFromRow(row as Record<string, string | number | null>));
    },
  };
}
