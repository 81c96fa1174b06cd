/**
 * Databases as an older deploy-sts left them, for migration tests: the first `version` migrations applied and recorded
 * in schema_version as the storage's own `migrate` records them, and nothing more.
 */
import { DatabaseSync } from 'node:sqlite';
import type { Pool } from 'pg';
import { MIGRATIONS as PG_MIGRATIONS } from '../../exchange-service/storage/pg-migrations.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../exchange-service/storage/sqlite.js';

/** A SQLite file at schema `version` (WAL mode), left open for the caller to add rows and close. */
export function sqliteAtVersion(file: string, version: number): DatabaseSync {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
  SQLITE_MIGRATIONS.slice(0, version).forEach((sql, i) => {
    db.exec(sql);
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(i + 1);
  });
  return db;
}

/** A PostgreSQL database (empty before) brought to schema `version`. */
export async function postgresAtVersion(pool: Pool, version: number): Promise<void> {
  await pool.query('CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  for (const [i, sql] of PG_MIGRATIONS.slice(0, version).entries()) {
    await pool.query(sql);
    await pool.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)', [i + 1]);
  }
}
