import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate } from '../../exchange-service/storage/pg-migrations.js';
import { createPool, postgresStorage } from '../../exchange-service/storage/postgres.js';
import type { Storage } from '../../exchange-service/storage/types.js';
import { freePort, SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { postgresAtVersion } from '../helpers/schema-version.js';
import { denialRecord, grantRecord, nowSeconds } from './support/records.js';

describe.skipIf(SKIP_POSTGRES)('the PostgreSQL storage', () => {
  let server: TestPostgres;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.close().catch(() => undefined)));
  });

  function pool(url: string): Pool {
    const p = createPool(url);
    opened.push({ close: () => p.end() });
    return p;
  }

  /** A migrated database and `replicas` independent storages (own pools) on it, as separate processes would have. */
  async function freshStorage(replicas = 1): Promise<{ url: string; storages: Storage[]; admin: Pool }> {
    const url = await server.createDatabase();
    const admin = pool(url);
    await migrate(admin);
    const storages = Array.from({ length: replicas }, () => {
      const storage = postgresStorage(createPool(url));
      opened.push(storage);
      return storage;
    });
    return { url, storages, admin };
  }

  describe('migrations', () => {
    it('bring an empty database to the current version, and running them again changes nothing', async () => {
      const admin = pool(await server.createDatabase());
      expect(await migrate(admin)).toBe(MIGRATIONS.length);
      expect(await migrate(admin)).toBe(MIGRATIONS.length);
      const { rows } = await admin.query('SELECT version FROM schema_version ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    });

    it('apply each migration exactly once when several processes start at the same moment', async () => {
      const url = await server.createDatabase();
      const pools = [pool(url), pool(url), pool(url)];
      expect(await Promise.all(pools.map((p) => migrate(p)))).toEqual(pools.map(() => MIGRATIONS.length));
      const { rows } = await pools[0]!.query('SELECT count(*)::int AS n FROM schema_version');
      expect(rows[0].n).toBe(MIGRATIONS.length);
    });

    it('keep every replay row across the re-keying of the replay cache (migration 4)', async () => {
      const url = await server.createDatabase();
      const admin = pool(url);
      // A database as version 3 left it: the replay cache keyed by (issuer, jti).
      await postgresAtVersion(admin, 3);
      const now = nowSeconds();
      await admin.query(`INSERT INTO replay (issuer, jti, expires_at) SELECT 'https://issuer.test', 'before-' || i, $1 + i FROM generate_series(0, 299) AS i`, [now]);
      await admin.query(`INSERT INTO replay (issuer, jti, expires_at) VALUES ('https://issuer.test', 'expired-before', $1)`, [now - 1_000]);

      expect(await migrate(admin)).toBe(MIGRATIONS.length);
      const { rows: indexes } = await admin.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'replay' ORDER BY indexname`);
      expect(indexes.map((r) => r.indexname)).toEqual(['replay_pkey']);
      const storage = postgresStorage(createPool(url));
      try {
        // Each token used before the upgrade is still refused once, with the expiry it carries.
        const again = await Promise.all(Array.from({ length: 300 }, (_, i) => storage.consumeJti('https://issuer.test', `before-${i}`, now + i)));
        expect(again.every((first) => first === false)).toBe(true);
        expect(await storage.consumeJti('https://issuer.test', 'after', now + 300)).toBe(true);
        expect(await storage.prune(now)).toBe(1);
      } finally {
        await storage.close();
      }
    });

    it('refuse a database written by a newer deploy-sts', async () => {
      const admin = pool(await server.createDatabase());
      await migrate(admin);
      await admin.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)', [MIGRATIONS.length + 1]);
      await expect(migrate(admin)).rejects.toThrow(/newer than this deploy-sts.*upgrade deploy-sts/);
    });
  });

  describe('the replay cache', () => {
    it('accepts one jti exactly once among 50 concurrent uses', async () => {
      const { storages: [storage] } = await freshStorage();
      const exp = nowSeconds() + 300;
      const results = await Promise.all(Array.from({ length: 50 }, () => storage!.consumeJti('https://issuer.test', 'jti-1', exp)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('accepts one jti exactly once when two replicas see it at the same instant', async () => {
      const { storages } = await freshStorage(2);
      const exp = nowSeconds() + 300;
      const attempts = Array.from({ length: 40 }, (_, i) => storages[i % 2]!.consumeJti('https://issuer.test', 'shared-jti', exp));
      expect((await Promise.all(attempts)).filter(Boolean)).toHaveLength(1);
    });

    it('keeps the jtis of different issuers apart', async () => {
      const { storages: [storage] } = await freshStorage();
      const exp = nowSeconds() + 300;
      expect(await storage!.consumeJti('https://a.test', 'same', exp)).toBe(true);
      expect(await storage!.consumeJti('https://b.test', 'same', exp)).toBe(true);
      expect(await storage!.consumeJti('https://a.test', 'same', exp)).toBe(false);
    });
  });

  describe('the writes of one exchange (recordExchange)', () => {
    it('take the jti once and write the audit record of what became of it, among 40 concurrent uses on two replicas', async () => {
      const { storages, admin } = await freshStorage(2);
      const grant = grantRecord();
      const subject = { issuer: 'https://issuer.test', jti: grant.subjectJti!, expiresAt: nowSeconds() + 300 };
      const recordFor = (use: string) => (use === 'first' ? grant : denialRecord({ subjectJti: grant.subjectJti, reason: use === 'replay' ? 'replay' : 'storage_unavailable' }));
      const uses = await Promise.all(Array.from({ length: 40 }, (_, i) => storages[i % 2]!.recordExchange(subject, recordFor)));
      expect(uses.filter((u) => u === 'first')).toHaveLength(1);
      expect(uses.filter((u) => u === 'replay')).toHaveLength(39);
      const { rows } = await admin.query('SELECT result, reason, token_jti FROM audit WHERE subject_jti = $1', [grant.subjectJti]);
      expect(rows.filter((r) => r.result === 'granted')).toEqual([{ result: 'granted', reason: 'granted', token_jti: grant.tokenJti }]);
      expect(rows.filter((r) => r.reason === 'replay')).toHaveLength(39);
      expect(await storages[0]!.consumeJti(subject.issuer, subject.jti, subject.expiresAt)).toBe(false);
    });

    it('record the failure when the replay cache refuses the jti, and reject when the audit log refuses the record', async () => {
      const { storages: [storage], admin } = await freshStorage();
      const denial = denialRecord();
      const subject = { issuer: 'https://issuer.test', jti: denial.subjectJti!, expiresAt: nowSeconds() + 300 };
      await admin.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$`);
      await admin.query('CREATE TRIGGER replay_full BEFORE INSERT ON replay FOR EACH ROW EXECUTE FUNCTION refuse()');
      const recordFor = (use: string) => ({ ...denial, reason: use === 'unavailable' ? ('storage_unavailable' as const) : denial.reason });
      expect(await storage!.recordExchange(subject, recordFor)).toBe('unavailable');
      const { rows } = await admin.query('SELECT reason FROM audit WHERE subject_jti = $1', [denial.subjectJti]);
      expect(rows).toEqual([{ reason: 'storage_unavailable' }]);
      await admin.query('CREATE TRIGGER audit_full BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse()');
      await expect(storage!.recordExchange({ ...subject, jti: 'another' }, recordFor)).rejects.toThrow(/disk full/);
    });
  });

  describe('revocation', () => {
    it('is seen by every replica as soon as one records it, and recording it twice is harmless', async () => {
      const { storages: [a, b] } = await freshStorage(2);
      expect(await b!.isRevoked('token-1')).toBe(false);
      await a!.revoke('token-1', nowSeconds() + 600);
      await a!.revoke('token-1', nowSeconds() + 600);
      expect(await b!.isRevoked('token-1')).toBe(true);
      expect(await b!.isRevoked('token-2')).toBe(false);
    });
  });

  describe('the audit log', () => {
    it('gives back every record as written, newest first, filtered by site, time and count', async () => {
      const { storages: [a, b] } = await freshStorage(2);
      const t = nowSeconds();
      const first = grantRecord({ time: t - 100 });
      const second = denialRecord({ time: t - 50, site: 'blog' });
      const third = grantRecord({ time: t, context: 'preview', environment: null });
      await a!.appendAudit(first);
      await b!.appendAudit(second);
      await a!.appendAudit(third);

      const all = await b!.listAudit({});
      expect(all.map(({ id: _id, ...record }) => record)).toEqual([third, second, first]);
      expect(all.every((r) => Number.isInteger(r.id))).toBe(true);
      expect((await a!.listAudit({ site: 'blog' })).map((r) => r.reason)).toEqual(['no_rule_matched']);
      expect((await a!.listAudit({ since: t - 60 })).map((r) => r.time)).toEqual([t, t - 50]);
      expect(await a!.listAudit({ limit: 1 })).toHaveLength(1);
    });

    it('refuses to change or delete a record, even with direct SQL', async () => {
      const { storages: [storage], admin } = await freshStorage();
      await storage!.appendAudit(grantRecord());
      await expect(admin.query("UPDATE audit SET result = 'denied'")).rejects.toThrow(/append-only/);
      await expect(admin.query('DELETE FROM audit')).rejects.toThrow(/append-only/);
      await expect(admin.query('TRUNCATE audit')).rejects.toThrow(/append-only/);
      expect((await storage!.listAudit({})).map((r) => r.result)).toEqual(['granted']);
    });

    it('records a minted token once: a second grant with the same token jti is refused', async () => {
      const { storages: [storage] } = await freshStorage();
      const grant = grantRecord();
      await storage!.appendAudit(grant);
      await expect(storage!.appendAudit(grantRecord({ tokenJti: grant.tokenJti }))).rejects.toThrow();
    });
  });

  describe('issued tokens', () => {
    it('lists the unexpired grants, newest first, with their revocation, by site and count', async () => {
      const { storages: [storage] } = await freshStorage();
      const t = nowSeconds();
      const expired = grantRecord({ time: t - 2000, expiresAt: t - 1000 });
      const older = grantRecord({ time: t - 10 });
      const blog = grantRecord({ time: t - 5, site: 'blog' });
      const newest = grantRecord({ time: t });
      for (const r of [expired, older, denialRecord(), blog, newest]) await storage!.appendAudit(r);
      await storage!.revoke(older.tokenJti!, older.expiresAt!);

      const list = await storage!.listTokens({ now: t });
      expect(list.map((x) => x.jti)).toEqual([newest.tokenJti, blog.tokenJti, older.tokenJti]);
      expect(list.map((x) => x.revoked)).toEqual([false, false, true]);
      expect(list[0]).toEqual({
        jti: newest.tokenJti,
        site: 'docs',
        rule: newest.rule,
        context: 'production',
        scope: newest.scope,
        repository: 'acme/docs',
        issuedAt: t,
        expiresAt: newest.expiresAt,
        revoked: false,
      });
      expect((await storage!.listTokens({ now: t, site: 'blog' })).map((x) => x.jti)).toEqual([blog.tokenJti]);
      expect(await storage!.listTokens({ now: t, limit: 1 })).toHaveLength(1);
    });

    it('finds one granted token by its jti, and nothing for an unknown one', async () => {
      const { storages: [storage] } = await freshStorage();
      const grant = grantRecord();
      await storage!.appendAudit(grant);
      expect((await storage!.findToken(grant.tokenJti!))?.site).toBe('docs');
      expect(await storage!.findToken('no-such-jti')).toBeUndefined();
    });
  });

  describe('pruning', () => {
    it('deletes expired replay and revocation rows, keeps the audit log, and counts what it deleted', async () => {
      const { storages: [storage] } = await freshStorage();
      const t = nowSeconds();
      await storage!.consumeJti('https://issuer.test', 'old', t - 10);
      await storage!.consumeJti('https://issuer.test', 'live', t + 300);
      await storage!.revoke('old-token', t - 10);
      await storage!.revoke('live-token', t + 300);
      await storage!.appendAudit(grantRecord({ time: t - 5000, expiresAt: t - 4000 }));

      expect(await storage!.prune(t)).toBe(2);
      expect(await storage!.isRevoked('old-token')).toBe(false);
      expect(await storage!.isRevoked('live-token')).toBe(true);
      expect(await storage!.consumeJti('https://issuer.test', 'live', t + 300)).toBe(false);
      expect(await storage!.listAudit({})).toHaveLength(1);
      expect(await storage!.prune(t)).toBe(0);
    });
  });

  describe('failure', () => {
    it('reports ready while the database answers, and rejects once closed', async () => {
      const { storages: [storage] } = await freshStorage();
      await expect(storage!.ping()).resolves.toBeUndefined();
      await storage!.close();
      await expect(storage!.ping()).rejects.toThrow(/closed/);
      await expect(storage!.consumeJti('https://issuer.test', 'x', nowSeconds() + 60)).rejects.toThrow(/closed/);
    });

    it('rejects, rather than hangs or accepts, when the database cannot be reached', async () => {
      const storage = postgresStorage(createPool(`postgres://sts:pw@127.0.0.1:${await freePort()}/nowhere`, { connectTimeoutMs: 1000 }));
      opened.push(storage);
      await expect(storage.ping()).rejects.toThrow();
      await expect(storage.consumeJti('https://issuer.test', 'x', nowSeconds() + 60)).rejects.toThrow();
      await expect(storage.appendAudit(grantRecord())).rejects.toThrow();
      await expect(storage.isRevoked('x')).rejects.toThrow();
    });
  });
});
