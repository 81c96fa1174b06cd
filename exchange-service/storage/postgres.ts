/**
 * The shared storage for replicas: PostgreSQL through `pg`. The same tables and meaning as the SQLite backend:
 * the replay cache (`INSERT … ON CONFLICT DO NOTHING`, so one jti sent to two replicas at once is accepted once),
 * the revocation list every replica reads, and one append-only audit log (triggers refuse UPDATE, DELETE, TRUNCATE).
 * The pool is bounded and every wait is bounded (connect, statement, query); a failure is a rejection, which the
 * service turns into a 503 with no token, and the next request simply tries again once the database is back.
 */
import pg from 'pg';
import { AUDIT_COLUMNS, auditFromRow, auditParams, tokenFromRow, type Row } from './audit-row.js';
import { pgGatewayStorage } from './pg-gateway.js';
import type { AuditRecord, JtiUse, Storage } from './types.js';

export interface PoolOptions {
  /** Most connections this process opens (default 10). */
  max?: number;
  /** How long to wait for a connection, ms (default 3000). */
  connectTimeoutMs?: number;
  /** Server-side statement timeout, ms (default 5000). */
  statementTimeoutMs?: number;
  /** Told about errors of idle connections (e.g. the server restarted); they are dropped from the pool. */
  onIdleError?: (error: Error) => void;
}

export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const statementTimeout = options.statementTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
    idleTimeoutMillis: 10_000,
    statement_timeout: statementTimeout,
    // The client-side limit catches a server that stopped answering without closing the connection.
    query_timeout: statementTimeout * 2,
    application_name: 'deploy-sts',
    keepAlive: true,
  });
  // Without a listener an idle connection's error (server restart, network cut) would crash the process.
  pool.on('error', (error) => options.onIdleError?.(error));
  return pool;
}

const INSERT_AUDIT = `INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
const TOKEN_SELECT = `SELECT a.*, r.jti AS revoked FROM audit a LEFT JOIN revoked r ON r.jti = a.token_jti
                      WHERE a.result = 'granted' AND a.token_jti IS NOT NULL`;

/** BIGINT columns arrive as strings (pg keeps 64-bit precision); every value here is far below 2^53. */

/** Storage over a migrated database (see `migrate`). Closing it ends the pool. */
export function postgresStorage(pool: pg.Pool): Storage {
  let closed = false;
  /** `name`: a prepared statement, planned once per connection — for the statements every exchange runs. */
  const query = async (sql: string, params: unknown[] = [], name?: string): Promise<pg.QueryResult<Row>> => {
    if (closed) throw new Error('storage is closed');
    return pool.query<Row>(name ? { name, text: sql, values: params } : { text: sql, values: params });
  };

  const consumeJti = async (issuer: string, jti: string, expiresAt: number): Promise<boolean> => {
    const result = await query('INSERT INTO replay (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [issuer, jti, expiresAt], 'deploy_sts_consume_jti');
    return result.rowCount === 1;
  };
  const appendAudit = async (record: AuditRecord): Promise<void> => {
    await query(INSERT_AUDIT, auditParams(record), 'deploy_sts_append_audit');
  };

  return {
    kind: 'postgres',
    gateway: pgGatewayStorage(query),
    consumeJti,
    appendAudit,
    async recordExchange({ issuer, jti, expiresAt }, recordFor) {
      // Two statements: the record depends on the jti's use (and, for a first use, on the repository limit).
      let use: JtiUse;
      try {
        use = (await consumeJti(issuer, jti, expiresAt)) ? 'first' : 'replay';
      } catch {
        use = 'unavailable';
      }
      await appendAudit(recordFor(use));
      return use;
    },
    async revoke(jti, expiresAt) {
      await query('INSERT INTO revoked (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
        jti,
        expiresAt,
        Math.floor(Date.now() / 1000),
      ], 'deploy_sts_revoke');
    },
    async isRevoked(jti) {
      const result = await query('SELECT 1 AS x FROM revoked WHERE jti = $1', [jti], 'deploy_sts_is_revoked');
      return result.rows.length > 0;
    },
    async listTokens({ site, now, limit = 100 }) {
      const result = site
        ? await query(`${TOKEN_SELECT} AND a.site = $1 AND a.expires_at > $2 ORDER BY a.id DESC LIMIT $3`, [site, now, limit])
        : await query(`${TOKEN_SELECT} AND a.expires_at > $1 ORDER BY a.id DESC LIMIT $2`, [now, limit]);
      return result.rows.map(tokenFromRow);
    },
    async findToken(jti) {
      const result = await query(`${TOKEN_SELECT} AND a.token_jti = $1`, [jti]);
      return result.rows[0] ? tokenFromRow(result.rows[0]) : undefined;
    },
    async listAudit({ site, since = 0, limit = 100 }) {
      const result = site
        ? await query('SELECT * FROM audit WHERE site = $1 AND time >= $2 ORDER BY id DESC LIMIT $3', [site, since, limit])
        : await query('SELECT * FROM audit WHERE time >= $1 ORDER BY id DESC LIMIT $2', [since, limit]);
      return result.rows.map(auditFromRow);
    },
    async findAudit(id) {
      const result = await query('SELECT * FROM audit WHERE id = $1', [id]);
      return result.rows[0] === undefined ? undefined : auditFromRow(result.rows[0]);
    },
    async prune(now) {
      const a = await query('DELETE FROM replay WHERE expires_at < $1', [now]);
      const b = await query('DELETE FROM revoked WHERE expires_at < $1', [now]);
      const c = await query('DELETE FROM gateway_token_deploys WHERE expires_at < $1', [now]);
      return (a.rowCount ?? 0) + (b.rowCount ?? 0) + (c.rowCount ?? 0);
    },
    async ping() {
      await query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
