/**
 * A data directory whose SQLite file already holds a large audit log (and as many live replay-cache rows, the
 * steady state of a busy service: every jti is kept until its token expires). Written directly, in one
 * transaction of set-based inserts with the indexes and triggers restored afterwards; the schema comes from the
 * service itself.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqlite } from '../exchange-service/storage/sqlite.js';

export async function prefillDataDir(dataDir: string, rows: number, issuer: string): Promise<number> {
  const started = performance.now();
  await openSqlite(dataDir).close();
  const db = new DatabaseSync(join(dataDir, 'deploy-sts.sqlite'));
  const now = Math.floor(Date.now() / 1000);
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = OFF');
    db.exec('BEGIN');
    // Bulk load without the secondary indexes and the audit log's triggers (a per-row lookup, a full scan without
    // the indexes), then restore both from their own definitions: each index is built by one sort.
    const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('audit', 'replay_log') AND sql IS NOT NULL").all() as { name: string; sql: string }[];
    const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit', 'replay_log')").all() as { name: string; sql: string }[];
    for (const index of indexes) db.exec(`DROP INDEX ${index.name}`);
    for (const trigger of triggers) db.exec(`DROP TRIGGER ${trigger.name}`);
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO audit (time, result, site, rule, context, reason, detail, repository, repository_id, event_name, ref,
                          workflow_ref, environment, run_id, subject_jti, token_jti, scope, expires_at, client_ip)
       SELECT ? - (? - i) / 20,
              CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'granted' END,
              'site-' || printf('%05d', i % 10000),
              CASE WHEN i % 10 = 0 THEN NULL ELSE 'production' END,
              CASE WHEN i % 10 = 0 THEN NULL ELSE 'production' END,
              CASE WHEN i % 10 = 0 THEN 'no_rule_matched' ELSE 'granted' END,
              'rule "production" (site.yml) granted production deployments:write',
              'acme/docs', '892043217', 'push', 'refs/heads/main',
              'acme/docs/.github/workflows/deploy.yml@refs/heads/main', 'production', '7001234567',
              'prefill-subject-' || i,
              CASE WHEN i % 10 = 0 THEN NULL ELSE 'prefill-token-' || i END,
              CASE WHEN i % 10 = 0 THEN NULL ELSE 'deployments:write' END,
              CASE WHEN i % 10 = 0 THEN NULL ELSE ? - (? - i) / 20 + 600 END,
              '127.0.0.1'
       FROM n`,
    ).run(rows, now, rows, now, rows);
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO replay_log (issuer, jti, expires_at)
       SELECT ?, jti, ? + 300 FROM (SELECT lower(hex(randomblob(16))) AS jti FROM n) ORDER BY jti`,
    ).run(rows, issuer, now);
    for (const index of indexes) db.exec(index.sql);
    for (const trigger of triggers) db.exec(trigger.sql);
    db.exec('COMMIT');
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return (performance.now() - started) / 1000;
}
