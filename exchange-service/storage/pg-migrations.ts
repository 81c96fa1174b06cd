/**
 * The PostgreSQL schema as numbered migrations, applied at start-up in one transaction under an advisory lock, so
 * replicas starting together apply each migration exactly once (the second waits, then finds nothing to do).
 * The same tables and meaning as the SQLite schema, plus `signing_keys`: with PostgreSQL the replicas share their keys.
 */
import type { Pool } from 'pg';
import { LOCKS, advisoryXactLock, allowLongWait, inTransaction } from './pg-transaction.js';
import { PG_GATEWAY_MIGRATION, PG_GATEWAY_TOKEN_DEPLOYS_MIGRATION } from './pg-gateway.js';

export const MIGRATIONS: string[] = [
  // 1: initial schema
  `CREATE TABLE replay (
     issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at BIGINT NOT NULL,
     PRIMARY KEY (issuer, jti));
   CREATE INDEX replay_expiry ON replay (expires_at);
   CREATE TABLE revoked (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL);
   CREATE INDEX revoked_expiry ON revoked (expires_at);
   CREATE TABLE audit (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     time BIGINT NOT NULL, result TEXT NOT NULL CHECK (result IN ('granted','denied')),
     site TEXT, rule TEXT, context TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL,
     repository TEXT, repository_id TEXT, event_name TEXT, ref TEXT, workflow_ref TEXT, environment TEXT,
     run_id TEXT, subject_jti TEXT, token_jti TEXT, scope TEXT, expires_at BIGINT, client_ip TEXT);
   CREATE INDEX audit_site_time ON audit (site, time);
   CREATE INDEX audit_time ON audit (time);
   CREATE UNIQUE INDEX audit_token_jti ON audit (token_jti) WHERE token_jti IS NOT NULL;
   CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
   CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
   CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
   CREATE TABLE signing_keys (
     kid TEXT PRIMARY KEY, alg TEXT NOT NULL,
     private_jwk TEXT NOT NULL,
     encryption TEXT NOT NULL CHECK (encryption IN ('none', 'aes-256-gcm')),
     created_at BIGINT NOT NULL, retired_at BIGINT);
   CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;`,
  // 2: the deploy gateway's credentials, deploys and audit log (pg-gateway.ts)
  PG_GATEWAY_MIGRATION,
  // 3: deploys created per gateway token (the preview tokens' cap)
  PG_GATEWAY_TOKEN_DEPLOYS_MIGRATION,
  // 4: the replay cache keyed by expiry first, as SQLite's (sqlite.ts, migration 5): one index, whose inserts land at
  // its end, instead of a random key and an expiry index.
  `ALTER TABLE replay DROP CONSTRAINT replay_pkey;
   ALTER TABLE replay ADD PRIMARY KEY (expires_at, issuer, jti);
   DROP INDEX replay_expiry;`,
];

/** Bring the schema up to date; resolves the schema version. Safe to run from many processes at once. */
export async function migrate(pool: Pool): Promise<number> {
  return inTransaction(pool, async (client) => {
    // Waiting for another replica's migration is not a slow statement.
    await allowLongWait(client);
    await advisoryXactLock(client, LOCKS.migrate);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
    let version = rows[0]?.v ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(`the database has schema version ${version}, newer than this deploy-sts (${MIGRATIONS.length}); upgrade deploy-sts`);
    }
    while (version < MIGRATIONS.length) {
      await client.query(MIGRATIONS[version]!);
      version++;
      await client.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [version, Math.floor(Date.now() / 1000)]);
    }
    return version;
  });
}
