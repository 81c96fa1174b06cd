/**
 * The bound for this stack: a minimal Express 5 server doing only what an exchange cannot avoid — parse the
 * form, verify one RS256 signature, sign one Ed25519 token, insert one SQLite row (WAL, at the durability
 * setting under test) — with node:crypto and node:sqlite directly, on the main thread. No policy, no replay
 * check, no claim validation: the service's throughput divided by this one is the share of the possible it reaches.
 *
 * With BOUND_DATABASE_URL the row goes to PostgreSQL instead (through `pg`, a pool of 10, one autocommit insert per
 * request at the server's default durability): the bound of the replicas on PostgreSQL. The table is created by the
 * benchmark before the bound starts (`BOUND_TABLE_SQL`), so two bound processes can share one database.
 *
 * Run as a child process by bench/run.ts; env: BOUND_PUBLIC_JWK, BOUND_DATA_DIR, BOUND_SYNCHRONOUS, BOUND_DATABASE_URL.
 */
import { createPublicKey, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import express from 'express';
import pg from 'pg';

const INSERT = 'INSERT INTO audit (time, site, repository, subject_jti, token_jti, detail) VALUES ($1, $2, $3, $4, $5, $6)';

const publicKey = createPublicKey({ key: JSON.parse(process.env.BOUND_PUBLIC_JWK!), format: 'jwk' });
const signingKey = generateKeyPairSync('ed25519').privateKey;
const synchronous = process.env.BOUND_SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL';

const databaseUrl = process.env.BOUND_DATABASE_URL;
const pool = databaseUrl ? new pg.Pool({ connectionString: databaseUrl, max: 10 }) : undefined;
const db = pool ? undefined : new DatabaseSync(join(process.env.BOUND_DATA_DIR!, 'bound.sqlite'));
db?.exec('PRAGMA journal_mode = WAL');
db?.exec(`PRAGMA synchronous = ${synchronous}`);
db?.exec(`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, time INTEGER, site TEXT, repository TEXT,
         subject_jti TEXT, token_jti TEXT, detail TEXT)`);
const statement = db?.prepare('INSERT INTO audit (time, site, repository, subject_jti, token_jti, detail) VALUES (?, ?, ?, ?, ?, ?)');
/** One row per request: SQLite on the main thread, or PostgreSQL (a named statement, planned once per connection). */
const insert = async (values: (string | number | null)[]): Promise<void> => {
  if (pool) await pool.query({ name: 'bound_insert', text: INSERT, values });
  else statement!.run(...values);
};

const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: 'bound' })).toString('base64url');
const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.post('/token', express.urlencoded({ extended: false, limit: 32 * 1024 }), async (req, res) => {
  const body = req.body as Record<string, string>;
  const token = String(body.subject_token ?? '');
  const [h, p, s] = token.split('.');
  if (!h || !p || !s || !verify('sha256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'))) {
    res.status(400).json({ error: 'invalid_request' });
    return;
  }
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, string>;
  const site = String(body.resource ?? '').slice(5);
  const now = Math.floor(Date.now() / 1000);
  const jti = randomUUID();
  const payload = Buffer.from(
    JSON.stringify({
      iss: 'http://127.0.0.1', aud: 'deploy-api', sub: `site:${site}`, client_id: `github-actions:${claims.repository_id}`,
      iat: now, exp: now + 600, jti, scope: 'deployments:write', site, context: 'production',
      act: { sub: `repo:${claims.repository}`, repository: claims.repository, repository_id: claims.repository_id, run_id: claims.run_id,
        run_attempt: claims.run_attempt, workflow_ref: claims.job_workflow_ref, sha: claims.sha, event_name: claims.event_name, ref: claims.ref },
    }),
  ).toString('base64url');
  const signature = sign(null, Buffer.from(`${header}.${payload}`), signingKey).toString('base64url');
  try {
    await insert([now, site, claims.repository ?? null, claims.jti ?? null, jti, 'granted']);
  } catch {
    res.status(503).json({ error: 'temporarily_unavailable' });
    return;
  }
  res.setHeader('Cache-Control', 'no-store');
  res.json({
    access_token: `${header}.${payload}.${signature}`, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer', expires_in: 600, scope: 'deployments:write', site, context: 'production', rule: 'bound',
  });
});

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`bound listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => {
    db?.close();
    void (pool ? pool.end() : Promise.resolve()).finally(() => process.exit(0));
  });
  server.closeIdleConnections();
});
