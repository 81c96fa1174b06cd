/**
 * Attacks on the replay cache after its re-keying by (expires_at, issuer, jti) — SQLite migration 5, PostgreSQL
 * migration 4. The invariant under attack: a GitHub OIDC token, known by its issuer, jti and exp (all signed), is exchanged at most
 * once — by one service, by a service restarted on its SQLite file (a second one at once refuses to start), by two
 * replicas sharing one PostgreSQL database —
 * and the cache neither refuses legitimate tokens nor keeps rows for tokens that can no longer be accepted.
 * The attacker holds a captured valid token, or is a misbehaving but trusted issuer (it signs what it likes).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteKeySource } from '../../exchange-service/oidc/jwks.js';
import { MAX_AGE_SECONDS, verifyGitHubToken } from '../../exchange-service/oidc/verify-oidc.js';
import { MIGRATIONS as PG_MIGRATIONS, migrate as migratePostgres } from '../../exchange-service/storage/pg-migrations.js';
import { createPool, postgresStorage } from '../../exchange-service/storage/postgres.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../exchange-service/storage/sqlite.js';
import { SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { DEFAULT_AUDIENCE, startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { postgresAtVersion, sqliteAtVersion } from '../helpers/schema-version.js';
import { exchangeToken, spawnService, startService, tempDir, useIssuerAndService, type SpawnedService, type TestService } from '../helpers/service.js';
import { NO_RATE_LIMITS, nowSeconds } from './support.js';

const DATABASE_FILE = 'deploy-sts.sqlite';
/** service.ts PRUNE_GRACE_SECONDS: the service prunes rows whose expiry is older than now minus this. */
const PRUNE_GRACE_SECONDS = 120;
/** verify-oidc.ts: the default clock tolerance, and the maximum token age. */
const TOLERANCE = 60;
const MAX_AGE = MAX_AGE_SECONDS;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Replay rows of the SQLite file in `dataDir` (optionally of one jti), read by a connection of our own. */
function replayRows(dataDir: string, jti?: string): number {
  const db = new DatabaseSync(join(dataDir, DATABASE_FILE), { readOnly: true });
  try {
    const row = (jti === undefined ? db.prepare('SELECT count(*) AS n FROM replay_log').get() : db.prepare('SELECT count(*) AS n FROM replay_log WHERE jti = ?').get(jti)) as { n: number };
    return Number(row.n);
  } finally {
    db.close();
  }
}

/** The claims of a token as JSON text with its `exp` written as `expText` (same bytes otherwise). */
function withExpText(claims: Record<string, unknown>, expText: string): string {
  const text = JSON.stringify(claims);
  const plain = `"exp":${String(claims.exp)}`;
  expect(text).toContain(plain);
  return text.replace(plain, `"exp":${expText}`);
}

/** An answer's body for an assertion message, without any token in it. */
const shown = (body: Record<string, unknown>): string => JSON.stringify({ ...body, access_token: body.access_token === undefined ? undefined : '[a token]' });

function grantedOnce(statuses: number[]): void {
  expect(statuses.filter((s) => s === 200), JSON.stringify(statuses)).toHaveLength(1);
  expect(statuses.filter((s) => s !== 200).every((s) => s === 400), JSON.stringify(statuses)).toBe(true);
}

/** Eight rounds of one fresh token sent to two services at the same instant, twice each: granted once every round. */
async function grantedOnceAcross(issuer: TestIssuer, a: string, b: string): Promise<void> {
  for (let round = 0; round < 8; round++) {
    const token = await issuer.token();
    const answers = await Promise.all([exchangeToken(a, token), exchangeToken(b, token), exchangeToken(a, token), exchangeToken(b, token)]);
    grantedOnce(answers.map((x) => x.status));
  }
}

describe('the replay cache (SQLite) under attack', () => {
  const running = useIssuerAndService({ env: NO_RATE_LIMITS });

  describe('one captured token, presented concurrently', () => {
    it('is granted once when sent 25 times at the same instant to one service', async () => {
      const token = await running.issuer.token();
      const answers = await Promise.all(range(25).map(() => exchangeToken(running.svc.url, token)));
      grantedOnce(answers.map((a) => a.status));
      for (const a of answers.filter((x) => x.status !== 200)) {
        expect(String(a.body.error_description)).toContain('already exchanged');
        expect(a.body.access_token).toBeUndefined();
      }
    });
  });

  describe('legitimate tokens', () => {
    it('grants 40 different tokens sharing one exp, sent at the same instant: no false replay', async () => {
      const exp = nowSeconds() + 300;
      const tokens = await Promise.all(range(40).map(() => running.issuer.token({ exp })));
      const answers = await Promise.all(tokens.map((t) => exchangeToken(running.svc.url, t)));
      expect(answers.map((a) => a.status)).toEqual(tokens.map(() => 200));
    });
  });

  describe('exp encodings: one token, one key', () => {
    it('refuses the same jti and exp re-signed with exp written as 1.7e9-style, N.0, N.0000000001 or a duplicate key', async () => {
      const claims = running.issuer.claims();
      const exp = claims.exp as number;
      expect((await exchangeToken(running.svc.url, await running.issuer.tokenFromText(JSON.stringify(claims)))).status).toBe(200);
      const variants = [
        withExpText(claims, `${exp / 1e9}e9`),
        withExpText(claims, `${exp}.0`),
        withExpText(claims, `${exp}.0000000001`), // parses to exp itself: a double has no room for the fraction
        withExpText(claims, `${exp + 1000},"exp":${exp}`), // the last of duplicate keys wins in JSON.parse
      ];
      for (const text of variants) {
        const answer = await exchangeToken(running.svc.url, await running.issuer.tokenFromText(text));
        expect(answer.status, shown(answer.body)).toBe(400);
        expect(String(answer.body.error_description)).toContain('already exchanged');
      }
      expect(replayRows(running.svc.dataDir, claims.jti as string)).toBe(1);
    });

    it('refuses an exp that is not a safe integer or already past, and remembers nothing of it', async () => {
      const now = nowSeconds();
      const bad = [`${now + 300}.5`, `"${now + 300}"`, '9007199254740993', '1e300', '-1', '0', 'null', 'true', `[${now + 300}]`];
      for (const expText of bad) {
        const claims = running.issuer.claims();
        const answer = await exchangeToken(running.svc.url, await running.issuer.tokenFromText(withExpText(claims, expText)));
        expect(answer.status, `exp ${expText}: ${shown(answer.body)}`).toBe(400);
        expect(answer.body.access_token).toBeUndefined();
        expect(replayRows(running.svc.dataDir, claims.jti as string), `exp ${expText}`).toBe(0);
      }
    });
  });

  // The cache knows a token by issuer, jti and exp (README, "Security model"): an issuer that signs one jti again with
  // another exp mints a new token, as it could with a new jti — that is not a replay, and nothing here tests it as one.
  describe('an issuer that reuses a jti', () => {
    it('gets the same jti and exp exchanged once whatever other claims it signs with them', async () => {
      const claims = running.issuer.claims();
      expect((await exchangeToken(running.svc.url, await running.issuer.token(claims))).status).toBe(200);
      const again = await exchangeToken(running.svc.url, await running.issuer.token({ ...claims, run_id: '7009999999', iat: (claims.iat as number) - 1 }));
      expect(again.status, shown(again.body)).toBe(400);
      expect(String(again.body.error_description)).toContain('already exchanged');
    });
  });

  describe('clock leeway after exp against pruning', () => {
    it('still refuses a token accepted inside the leeway after its exp once the service has pruned, up to the last second of the leeway', async () => {
      const now = nowSeconds();
      const exp = now - 40; // expired, still inside the 60 s tolerance
      const token = await running.issuer.token({ iat: exp - 300, nbf: exp - 305, exp });
      expect((await exchangeToken(running.svc.url, token)).status).toBe(200);
      // The service's timer prunes at SECONDS() - PRUNE_GRACE_SECONDS; the last instant the verifier still accepts
      // this token is exp + TOLERANCE - 1: prune as the timer would then, and as it does now.
      await running.svc.service.storage.prune(exp + TOLERANCE - 1 - PRUNE_GRACE_SECONDS);
      await running.svc.service.storage.prune(nowSeconds() - PRUNE_GRACE_SECONDS);
      const again = await exchangeToken(running.svc.url, token);
      expect(again.status, shown(again.body)).toBe(400);
      expect(String(again.body.error_description)).toContain('already exchanged');
    });
  });

  // A replay row lived until the token's exp, which only the issuer bounds, though past iat + max age + tolerance the
  // verifier refuses the token anyway (too_old): exchange.ts keeps it until min(exp, iat + MAX_AGE_SECONDS).
  describe('growth', () => {
    it('forgets a token with an exp far in the future once no verifier can accept it any more (iat + max age + tolerance)', async () => {
      const iat = nowSeconds();
      const claims = running.issuer.claims({ iat, nbf: iat - 5, exp: Number.MAX_SAFE_INTEGER });
      const token = await running.issuer.token(claims);
      expect((await exchangeToken(running.svc.url, token)).status).toBe(200);
      // Past iat + MAX_AGE + TOLERANCE the token is refused as too old whatever its exp…
      const later = iat + MAX_AGE + TOLERANCE + 1;
      await expect(
        verifyGitHubToken(token, { issuers: new Map([[running.issuer.url, remoteKeySource(running.issuer.url)]]), audience: DEFAULT_AUDIENCE, now: () => later }),
      ).rejects.toMatchObject({ reason: 'too_old' });
      // …so its replay row is dead weight; the service's prune at that time (plus the grace) must remove it, or a
      // trusted issuer's far-future exps make the cache grow for ever.
      await running.svc.service.storage.prune(later + PRUNE_GRACE_SECONDS);
      expect(replayRows(running.svc.dataDir, claims.jti as string)).toBe(0);
    });
  });
});

// The replay check of SQLite lives in the serving process's memory (storage/consumed-jtis.ts), so a second process
// serving from the same file would accept a token the first has exchanged. It must refuse to start.
describe('two processes started on one SQLite data directory', () => {
  let issuer: TestIssuer;
  const processes: SpawnedService[] = [];
  let dataDir: string;
  let refusal: string;
  const now = nowSeconds();
  const ISSUER_BEFORE = 'https://issuer.before.test';

  beforeAll(async () => {
    issuer = await startIssuer();
    dataDir = tempDir();
    // A database as version 4 left it, with replay rows keyed by (issuer, jti); then both processes start at once.
    const old = sqliteAtVersion(join(dataDir, DATABASE_FILE), 4);
    const insert = old.prepare('INSERT INTO replay (issuer, jti, expires_at) VALUES (?, ?, ?)');
    range(200).forEach((i) => insert.run(ISSUER_BEFORE, `before-${i}`, now + i));
    old.close();
    const started = await Promise.allSettled(
      [0, 1].map(() => spawnService({ issuer: issuer.url, dataDir, env: { ...NO_RATE_LIMITS, DEPLOY_STS_SYNCHRONOUS: 'FULL' } })),
    );
    for (const outcome of started) {
      if (outcome.status === 'fulfilled') processes.push(outcome.value);
      else refusal = String(outcome.reason);
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await issuer?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('serve one of them; the other exits saying which directory is taken and what to do instead', () => {
    expect(processes).toHaveLength(1);
    expect(refusal).toMatch(/service exited with 1/);
    expect(refusal).toContain(`another deploy-sts serve is using the database ${join(dataDir, DATABASE_FILE)}`);
    expect(refusal).toContain('to run replicas, use PostgreSQL (DEPLOY_STS_DATABASE_URL)');
  });

  it('migrate the version-4 file once, keeping every replay row', () => {
    const db = new DatabaseSync(join(dataDir, DATABASE_FILE), { readOnly: true });
    try {
      const versions = (db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[]).map((r) => Number(r.version));
      expect(versions).toEqual(SQLITE_MIGRATIONS.map((_, i) => i + 1));
      const kept = db.prepare('SELECT count(*) AS n FROM replay_log WHERE issuer = ? AND jti LIKE ? AND expires_at = ? + CAST(substr(jti, 8) AS INTEGER)').get(ISSUER_BEFORE, 'before-%', now) as { n: number };
      expect(Number(kept.n)).toBe(200);
    } finally {
      db.close();
    }
  });

  it('grant a token sent many times at the same instant exactly once, round after round', async () => {
    const [serving] = processes as [SpawnedService];
    await grantedOnceAcross(issuer, serving.url, serving.url);
  });

  it('let a third start once the serving one has stopped, still refusing every token the first exchanged', async () => {
    const token = await issuer.token();
    expect((await exchangeToken(processes[0]!.url, token)).status).toBe(200);
    expect(await processes.shift()!.stop()).toBe(0);
    const next = await spawnService({ issuer: issuer.url, dataDir, env: { ...NO_RATE_LIMITS, DEPLOY_STS_SYNCHRONOUS: 'FULL' } });
    processes.push(next);
    const again = await exchangeToken(next.url, token);
    expect(again.status, shown(again.body)).toBe(400);
    expect(again.body.error_description).toMatch(/was already exchanged/);
  }, 30_000);
});

describe.skipIf(SKIP_POSTGRES)('two replicas sharing one PostgreSQL database', () => {
  let server: TestPostgres;
  let issuer: TestIssuer;
  let url: string;
  const replicas: TestService[] = [];

  beforeAll(async () => {
    issuer = await startIssuer();
    server = await startPostgres();
    url = await server.createDatabase();
    for (let i = 0; i < 2; i++) {
      replicas.push(await startService({ issuer: issuer.url, env: { ...NO_RATE_LIMITS, DEPLOY_STS_DATABASE_URL: url } }));
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await issuer?.close();
    await server?.stop();
  });

  it('grant a token sent to both at the same instant exactly once, round after round', async () => {
    const [a, b] = replicas as [TestService, TestService];
    await grantedOnceAcross(issuer, a.url, b.url);
  });

  it('migrate a version-3 database once when three replicas start together, keeping every replay row', async () => {
    const dbUrl = await server.createDatabase();
    const admin = createPool(dbUrl);
    const pools = [createPool(dbUrl), createPool(dbUrl), createPool(dbUrl)];
    try {
      await postgresAtVersion(admin, 3);
      const now = nowSeconds();
      await admin.query(`INSERT INTO replay (issuer, jti, expires_at) SELECT 'https://issuer.test', 'before-' || i, $1 + i FROM generate_series(0, 199) AS i`, [now]);
      expect(await Promise.all(pools.map((p) => migratePostgres(p)))).toEqual(pools.map(() => PG_MIGRATIONS.length));
      const { rows } = await admin.query('SELECT count(*)::int AS n FROM schema_version');
      expect(rows[0].n).toBe(PG_MIGRATIONS.length);
      const { rows: kept } = await admin.query('SELECT count(*)::int AS n FROM replay');
      expect(kept[0].n).toBe(200);
      const storage = postgresStorage(createPool(dbUrl));
      try {
        const again = await Promise.all(range(200).map((i) => storage.consumeJti('https://issuer.test', `before-${i}`, now + i)));
        expect(again.every((first) => first === false)).toBe(true);
      } finally {
        await storage.close();
      }
    } finally {
      await Promise.all([admin, ...pools].map((p) => p.end()));
    }
  });
});
