import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dbKeyStore } from '../../exchange-service/keys/db-key-store.js';
import { KeyEncryptionError, parseKeyEncryptionKey, readKeyEncryptionKey } from '../../exchange-service/keys/key-encryption.js';
import { KeyRing } from '../../exchange-service/keys/key-ring.js';
import { openSigningKeys } from '../../exchange-service/keys/open.js';
import { openStorage } from '../../exchange-service/storage/open.js';
import { migrate } from '../../exchange-service/storage/pg-migrations.js';
import { createPool } from '../../exchange-service/storage/postgres.js';
import type { StoredKey } from '../../exchange-service/keys/key-store.js';
import { freePort, SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { ROOT, tempDir } from '../helpers/service.js';

const execFileP = promisify(execFile);

const dir = tempDir('deploy-sts-kek-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kekFile(name: string, contents = randomBytes(32).toString('base64')): string {
  const file = join(dir, name);
  writeFileSync(file, `${contents}\n`, { mode: 0o600 });
  return file;
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof KeyEncryptionError ? error.code : 'not a KeyEncryptionError';
  }
  return undefined;
}

describe('the key-encryption key file', () => {
  it('holds 32 random bytes as base64, base64url or hex', () => {
    const bytes = randomBytes(32);
    for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), ` ${bytes.toString('hex').toUpperCase()}\n`]) {
      expect(parseKeyEncryptionKey(text, 'kek').equals(bytes)).toBe(true);
    }
  });

  it('is refused when it holds anything else, saying how to make one', () => {
    for (const text of ['', randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), 'not a key at all!']) {
      expect(errorCode(() => parseKeyEncryptionKey(text, 'kek'))).toBe('kek_invalid');
    }
    expect(() => parseKeyEncryptionKey(randomBytes(16).toString('base64'), '/etc/kek')).toThrow(/\/etc\/kek.*32 random bytes.*holds 16 bytes.*openssl rand -base64 32/);
  });

  it('is refused when it cannot be read', async () => {
    await expect(readKeyEncryptionKey(join(dir, 'missing'))).rejects.toMatchObject({ code: 'kek_unreadable' });
  });
});

describe.skipIf(SKIP_POSTGRES)('signing keys in PostgreSQL', () => {
  let server: TestPostgres;
  const toClose: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.all(toClose.splice(0).map((close) => close().catch(() => undefined)));
  });

  async function migratedPool(url?: string): Promise<Pool> {
    const pool = createPool(url ?? (await server.createDatabase()));
    toClose.push(() => pool.end());
    await migrate(pool);
    return pool;
  }

  /** What `serve` and `keys rotate` do: open the storage, then the signing keys beside it. */
  async function open(config: { databaseUrl: string; keyEncryptionKeyFile?: string }, warnings: string[] = []) {
    const opened = await openStorage({ dataDir: dir, synchronous: 'FULL', databaseUrl: config.databaseUrl });
    toClose.push(() => opened.storage.close());
    const { keyStore, description } = await openSigningKeys(opened, { keyEncryptionKeyFile: config.keyEncryptionKeyFile, warn: (m) => warnings.push(m) });
    return { storage: opened.storage, keyStore, description };
  }

  const key = (kid: string, createdAt: number, retiredAt: number | null = null): StoredKey => ({
    kid,
    alg: 'EdDSA',
    privateJwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, d: `secret-${kid}`, kid }),
    createdAt,
    retiredAt,
  });

  describe('the key store', () => {
    it('saves, lists, retires and deletes keys', async () => {
      const store = dbKeyStore(await migratedPool());
      await store.save(key('one', 100));
      await store.save(key('two', 200));
      expect(await store.list()).toEqual([key('one', 100, 200), key('two', 200)]);
      await store.retire('two', 300);
      await store.retire('two', 400);
      expect((await store.list()).map((k) => k.retiredAt)).toEqual([200, 300]);
      await store.delete('one');
      expect((await store.list()).map((k) => k.kid)).toEqual(['two']);
    });

    it('never holds two active keys: a new active key retires the previous one', async () => {
      const pool = await migratedPool();
      const store = dbKeyStore(pool);
      await Promise.all(Array.from({ length: 8 }, (_, i) => store.save(key(`k${i}`, 100 + i))));
      const keys = await store.list();
      expect(keys).toHaveLength(8);
      expect(keys.filter((k) => k.retiredAt === null)).toHaveLength(1);
    });
  });

  describe('encryption at rest', () => {
    it('seals the private key with the key-encryption key, so the row reveals nothing', async () => {
      const pool = await migratedPool();
      const kek = await readKeyEncryptionKey(kekFile('sealing'));
      await dbKeyStore(pool, { kek }).save(key('sealed', 100));
      const { rows } = await pool.query('SELECT private_jwk, encryption FROM signing_keys');
      expect(rows[0].encryption).toBe('aes-256-gcm');
      expect(rows[0].private_jwk).not.toContain('secret-sealed');
      expect(rows[0].private_jwk).toMatch(/^v2\./);
      expect(await dbKeyStore(pool, { kek }).list()).toEqual([key('sealed', 100)]);
    });

    it('refuses to read sealed keys without the key-encryption key, or with another one', async () => {
      const pool = await migratedPool();
      await dbKeyStore(pool, { kek: randomBytes(32) }).save(key('sealed', 100));
      await expect(dbKeyStore(pool).list()).rejects.toMatchObject({ code: 'kek_missing', message: expect.stringMatching(/DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE/) });
      await expect(dbKeyStore(pool, { kek: randomBytes(32) }).list()).rejects.toMatchObject({ code: 'key_undecryptable' });
    });

    it('binds a sealed key to its kid: moved to another row it no longer opens', async () => {
      const pool = await migratedPool();
      const kek = randomBytes(32);
      const store = dbKeyStore(pool, { kek });
      await store.save(key('a', 100, 150));
      await store.save(key('b', 200));
      await pool.query("UPDATE signing_keys SET private_jwk = (SELECT private_jwk FROM signing_keys WHERE kid = 'a') WHERE kid = 'b'");
      await expect(store.list()).rejects.toMatchObject({ code: 'key_undecryptable', message: expect.stringContaining('signing key b') });
    });

    it('warns at start-up when the keys are not encrypted', async () => {
      const url = await server.createDatabase();
      const warnings: string[] = [];
      const plain = await open({ databaseUrl: url }, warnings);
      expect(warnings.join('\n')).toMatch(/stored unencrypted: set DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE/);
      expect(warnings.join('\n')).not.toContain(server.password);
      expect(plain.description).toMatch(/NOT encrypted/);
    });
  });

  describe('setting a key-encryption key on a database whose keys are not sealed', () => {
    const cli = (args: string[], env: Record<string, string>) =>
      execFileP(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 }).then(
        (run) => ({ status: 0, ...run }),
        (failed: { code: number; stdout: string; stderr: string }) => ({ status: failed.code, stdout: failed.stdout, stderr: failed.stderr }),
      );

    it('is refused at start-up, naming the one command that seals them', async () => {
      const url = await server.createDatabase();
      await open({ databaseUrl: url }, []);
      const failure = open({ databaseUrl: url, keyEncryptionKeyFile: kekFile('refused') });
      await expect(failure).rejects.toMatchObject({ code: 'key_unsealed', message: expect.stringContaining('seal them once: deploy-sts keys seal') });
    });

    it('`deploy-sts keys seal` seals them once, listing each, and the service then starts with the same key', async () => {
      const url = await server.createDatabase();
      const plain = await open({ databaseUrl: url }, []);
      const [first] = await plain.keyStore.list();
      const kek = kekFile('explicit');

      const run = await cli(['keys', 'seal'], { DEPLOY_STS_DATABASE_URL: url, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(first!.kid);
      expect(run.stdout).toMatch(/unencrypted/);
      expect(run.stdout).toMatch(/sealed 1 signing key\(s\)/);
      expect(run.stdout).not.toMatch(/warning/);
      expect(`${run.stdout}${run.stderr}`).not.toContain(server.password);

      const sealed = await open({ databaseUrl: url, keyEncryptionKeyFile: kek }, []);
      expect(sealed.description).toMatch(/sealed with AES-256-GCM/);
      expect(await sealed.keyStore.list()).toEqual([first]);
      const pool = await migratedPool(url);
      expect((await pool.query('SELECT encryption FROM signing_keys')).rows.map((r) => r.encryption)).toEqual(['aes-256-gcm']);

      const again = await cli(['keys', 'seal'], { DEPLOY_STS_DATABASE_URL: url, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek });
      expect(again).toMatchObject({ status: 0, stdout: expect.stringMatching(/^nothing to seal: all 1 signing key\(s\) in postgres:\/\/.*are sealed\n$/) });
    });

    it('`keys seal` warns when sealed keys were there already: this service did not write the row it seals', async () => {
      const url = await server.createDatabase();
      const kek = kekFile('beside');
      await open({ databaseUrl: url, keyEncryptionKeyFile: kek }, []);
      const pool = await migratedPool(url);
      const planted = key('beside', Math.floor(Date.now() / 1000) - 10);
      await pool.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ($1, $2, $3, 'none', $4, $4)", [
        planted.kid,
        planted.alg,
        planted.privateJwk,
        planted.createdAt,
      ]);
      const run = await cli(['keys', 'seal'], { DEPLOY_STS_DATABASE_URL: url, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('beside');
      expect(run.stdout).toMatch(/warning: 1 key\(s\) were sealed already.*keys rotate --now/s);
    });

    it('`keys seal` without a key-encryption key, or with SQLite, is a usage error that says what it needs', async () => {
      const url = await server.createDatabase();
      const noKek = await cli(['keys', 'seal'], { DEPLOY_STS_DATABASE_URL: url });
      expect(noKek.status).toBe(2);
      expect(noKek.stderr).toMatch(/keys seal needs the key-encryption key: set DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE/);
      const dataDir = join(tempDir('deploy-sts-seal-sqlite-'), 'data');
      const sqlite = await cli(['keys', 'seal'], { DEPLOY_STS_DATA_DIR: dataDir, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kekFile('sqlite') });
      expect(sqlite.status).toBe(2);
      expect(sqlite.stderr).toMatch(/keys seal is for signing keys kept in PostgreSQL/);
      // Refused before anything is opened: no SQLite database made on the way.
      expect(existsSync(dataDir)).toBe(false);
    });
  });

  describe('replicas opening one database', () => {
    it('agree on a single first signing key when they start at the same moment', async () => {
      const url = await server.createDatabase();
      const kekPath = kekFile('together');
      const replicas = await Promise.all(Array.from({ length: 4 }, () => open({ databaseUrl: url, keyEncryptionKeyFile: kekPath })));
      const rings = await Promise.all(replicas.map((r) => KeyRing.open(r.keyStore)));
      expect(new Set(rings.map((r) => r.active().kid)).size).toBe(1);
      expect(rings[0]!.all()).toHaveLength(1);
    });

    it('end with exactly one active key when two rotate at the same moment', async () => {
      const url = await server.createDatabase();
      const [a, b] = await Promise.all([open({ databaseUrl: url }), open({ databaseUrl: url })]);
      const [ringA, ringB] = await Promise.all([KeyRing.open(a!.keyStore), KeyRing.open(b!.keyStore)]);
      await Promise.all([ringA.rotate(), ringB.rotate()]);
      const keys = await a!.keyStore.list();
      expect(keys).toHaveLength(3);
      expect(keys.filter((k) => k.retiredAt === null)).toHaveLength(1);
      await Promise.all([ringA.reload(), ringB.reload()]);
      expect(ringA.active().kid).toBe(ringB.active().kid);
    });
  });

  describe('opening', () => {
    it('describes the database without its password', async () => {
      const opened = await open({ databaseUrl: await server.createDatabase() });
      expect(opened.storage.kind).toBe('postgres');
      expect(opened.description).toMatch(/^postgres \(postgres:\/\/sts:\*\*\*@127\.0\.0\.1:\d+\/\w+, signing keys in the database/);
      expect(opened.description).not.toContain(server.password);
    });

    it('creates no signing key: only the verbs that sign open the key ring', async () => {
      const url = await server.createDatabase();
      const opened = await openStorage({ dataDir: dir, synchronous: 'FULL', databaseUrl: url });
      toClose.push(() => opened.storage.close());
      expect(await opened.storage.listAudit({})).toEqual([]);
      const pool = await migratedPool(url);
      expect((await pool.query('SELECT kid FROM signing_keys')).rows).toEqual([]);
    });

    it('`deploy-sts audit` against a fresh database creates no key and warns about none', async () => {
      const url = await server.createDatabase();
      const run = await execFileP(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), 'audit'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', DEPLOY_STS_DATABASE_URL: url },
        timeout: 20_000,
      });
      expect(run.stdout).toBe('no audit records\n');
      expect(run.stderr).toBe('');
      const pool = await migratedPool(url);
      expect((await pool.query('SELECT kid FROM signing_keys')).rows).toEqual([]);
    });

    it('fails with the redacted address when the database cannot be reached', async () => {
      const databaseUrl = `postgres://sts:hunter2-password@127.0.0.1:${await freePort()}/deploy`;
      const failure = openStorage({ dataDir: dir, synchronous: 'FULL', databaseUrl });
      await expect(failure).rejects.toThrow(/cannot prepare the PostgreSQL database postgres:\/\/sts:\*\*\*@127\.0\.0\.1:\d+\/deploy/);
      await expect(failure).rejects.not.toThrow(/hunter2/);
    });
  });
});
