/**
 * The embedded storage: one SQLite file in the data directory through Node's built-in `node:sqlite`.
 * WAL journal, versioned migrations, an append-only audit log (triggers refuse UPDATE and DELETE on it),
 * the replay cache and the revocation list (both pruned once expired).
 */
import { mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { AuditRecord, IssuedToken, Storage, StoredAudit } from './types.js';

export type Synchronous = 'NORMAL' | 'FULL';

export interface SqliteOptions {
  /** `FULL`: every commit is fsynced (survives power loss). `NORMAL`: survives a process crash. */
  synchronous?: Synchronous;
}

const MIGRATIONS: string[] = [
  // 1: initial schema
  `CREATE TABLE replay (
     issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (issuer, jti)) WITHOUT ROWID;
   CREATE INDEX replay_expiry ON replay (expires_at);
   CREATE TABLE revoked (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX revoked_expiry ON revoked (expires_at);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL, result TEXT NOT NULL CHECK (result IN ('granted','denied')),
     site TEXT, rule TEXT, context TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL,
     repository TEXT, repository_id TEXT, event_name TEXT, ref TEXT, workflow_ref TEXT, environment TEXT,
     run_id TEXT, subject_jti TEXT, token_jti TEXT, scope TEXT, expires_at INTEGER, client_ip TEXT);
   CREATE INDEX audit_site_time ON audit (site, time);
   CREATE INDEX audit_time ON audit (time);
   CREATE UNIQUE INDEX audit_token_jti ON audit (token_jti) WHERE token_jti IS NOT NULL;
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
];

const AUDIT_COLUMNS = [
  'time', 'result', 'site', 'rule', 'context', 'reason', 'detail', 'repository', 'repository_id', 'event_name', 'ref',
  'workflow_ref', 'environment', 'run_id', 'subject_jti', 'token_jti', 'scope', 'expires_at', 'client_ip',
] as const;

type Row = Record<string, string | number | null>;

function auditParams(r: AuditRecord): (string | number | null)[] {
  return [
    r.time, r.result, r.site, r.rule, r.context, r.reason, r.detail, r.repository, r.repositoryId, r.eventName, r.ref,
    r.workflowRef, r.environment, r.runId, r.subjectJti, r.tokenJti, r.scope, r.expiresAt, r.clientIp,
  ];
}

function auditFromRow(row: Row): StoredAudit {
  return {
    id: Number(row.id),
    time: Number(row.time),
    result: row.result as StoredAudit['result'],
    site: row.site as string | null,
    rule: row.rule as string | null,
    context: row.context as StoredAudit['context'],
    reason: String(row.reason),
    detail: String(row.detail),
    repository: row.repository as string | null,
    repositoryId: row.repository_id as string | null,
    eventName: row.event_name as string | null,
    ref: row.ref as string | null,
    workflowRef: row.workflow_ref as string | null,
    environment: row.environment as string | null,
    runId: row.run_id as string | null,
    subjectJti: row.subject_jti as string | null,
    tokenJti: row.token_jti as string | null,
    scope: row.scope as string | null,
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    clientIp: row.client_ip as string | null,
  };
}

function tokenFromRow(row: Row): IssuedToken {
  return {
    jti: String(row.token_jti),
    site: String(row.site),
    rule: String(row.rule),
    context: row.context as IssuedToken['context'],
    scope: String(row.scope),
    repository: String(row.repository),
    issuedAt: Number(row.time),
    expiresAt: Number(row.expires_at),
    revoked: row.revoked !== null && row.revoked !== undefined,
  };
}

export function migrate(db: DatabaseSync): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  let version = row.v ?? 0;
  if (version > MIGRATIONS.length) {
    throw new Error(`the database has schema version ${version}, newer than this deploy-sts (${MIGRATIONS.length}); upgrade deploy-sts`);
  }
  while (version < MIGRATIONS.length) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[version]!);
      version++;
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(version);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
  return version;
}

export function openSqlite(dataDir: string, options: SqliteOptions = {}): Storage {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, 'deploy-sts.sqlite');
  const db = new DatabaseSync(file);
  chmodSync(file, 0o600);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${options.synchronous ?? 'FULL'}`);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  migrate(db);

  const statements = new Map<string, StatementSync>();
  const stmt = (sql: string): StatementSync => {
    let s = statements.get(sql);
    if (!s) {
      s = db.prepare(sql);
      statements.set(sql, s);
    }
    return s;
  };
  const insertAudit = `INSERT INTO audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`;
  const tokenSelect = `SELECT a.*, r.jti AS revoked FROM audit a LEFT JOIN revoked r ON r.jti = a.token_jti
                       WHERE a.result = 'granted' AND a.token_jti IS NOT NULL`;

  let closed = false;
  const open = () => {
    if (closed) throw new Error('storage is closed');
  };

  return {
    kind: 'sqlite',
    async consumeJti(issuer, jti, expiresAt) {
      open();
      const result = stmt('INSERT INTO replay (issuer, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(issuer, jti, expiresAt);
      return Number(result.changes) === 1;
    },
    async appendAudit(record) {
      open();
      stmt(insertAudit).run(...auditParams(record));
    },
    async revoke(jti, expiresAt) {
      open();
      stmt('INSERT INTO revoked (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(
        jti,
        expiresAt,
        Math.floor(Date.now() / 1000),
      );
    },
    async isRevoked(jti) {
      open();
      return stmt('SELECT 1 AS x FROM revoked WHERE jti = ?').get(jti) !== undefined;
    },
    async listTokens({ site, now, limit = 100 }) {
      open();
      const rows = site
        ? stmt(`${tokenSelect} AND a.site = ? AND a.expires_at > ? ORDER BY a.id DESC LIMIT ?`).all(site, now, limit)
        : stmt(`${tokenSelect} AND a.expires_at > ? ORDER BY a.id DESC LIMIT ?`).all(now, limit);
      return (rows as Row[]).map(tokenFromRow);
    },
    async findToken(jti) {
      open();
      const row = stmt(`${tokenSelect} AND a.token_jti = ?`).get(jti) as Row | undefined;
      return row ? tokenFromRow(row) : undefined;
    },
    async listAudit({ site, since = 0, limit = 100 }) {
      open();
      const rows = site
        ? stmt('SELECT * FROM audit WHERE site = ? AND time >= ? ORDER BY id DESC LIMIT ?').all(site, since, limit)
        : stmt('SELECT * FROM audit WHERE time >= ? ORDER BY id DESC LIMIT ?').all(since, limit);
      return (rows as Row[]).map(auditFromRow);
    },
    async prune(now) {
      open();
      const a = stmt('DELETE FROM replay WHERE expires_at < ?').run(now);
      const b = stmt('DELETE FROM revoked WHERE expires_at < ?').run(now);
      return Number(a.changes) + Number(b.changes);
    },
    async ping() {
      open();
      stmt('SELECT 1').get();
    },
    async close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
