/**
 * With a key-encryption key, only sealed keys are trusted. Whoever can write the database but does not hold the KEK
 * must not be able to add a signing key (a plaintext row), bring a retired key back, or re-date one — the seal binds
 * kid, alg, created_at and retired_at — and keys sealed by earlier versions (the kid alone bound) are refused until the
 * operator reseals them once with `deploy-sts keys seal` (sealStoredKeys).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintAccessToken } from '../../exchange-service/access-token/mint.js';
import { dbKeyStore, sealStoredKeys } from '../../exchange-service/keys/db-key-store.js';
import { readKeyEncryptionKey, sealLegacyPrivateJwk } from '../../exchange-service/keys/key-encryption.js';
import { openSigningKeys } from '../../exchange-service/keys/open.js';
import { openStorage } from '../../exchange-service/storage/open.js';
import { migrate } from '../../exchange-service/storage/pg-migrations.js';
import { createPool } from '../../exchange-service/storage/postgres.js';
import { SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { postForm, startService, tempDir, type TestService } from '../helpers/service.js';

const dir = tempDir('deploy-sts-sealed-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kekFile(name: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return file;
}

/** A real Ed25519 private JWK, as the key ring stores it. */
function ed25519(kid: string) {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, privateJwk: JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid }) };
}

const now = () => Math.floor(Date.now() / 1000);

describe.skipIf(SKIP_POSTGRES)('with a key-encryption key, only sealed keys are trusted', () => {
  let server: TestPostgres;
  let issuer: TestIssuer;
  const toClose: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startPostgres();
    issuer = await startIssuer();
  });
  afterAll(async () => {
    await issuer?.close();
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.all(toClose.splice(0).map((close) => close().catch(() => undefined)));
  });

  async function pool(url: string): Promise<Pool> {
    const p = createPool(url);
    toClose.push(() => p.end());
    await migrate(p);
    return p;
  }

  async function service(url: string, kek: string): Promise<TestService> {
    const svc = await startService({
      issuer: issuer.url,
      env: { DEPLOY_STS_DATABASE_URL: url, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek, DEPLOY_STS_WATCH_POLICIES: '0' },
    });
    toClose.push(() => svc.stop());
    return svc;
  }

  it('a plaintext row planted in signing_keys is not loaded, not published, and its tokens are not accepted', async () => {
    const url = await server.createDatabase();
    const kek = kekFile('planted');
    const svc = await service(url, kek);
    const db = await pool(url);
    const { privateKey, privateJwk } = ed25519('planted');
    const t = now();
    await db.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ('planted', 'EdDSA', $1, 'none', $2, $3)", [privateJwk, t - 10, t - 5]);

    await expect(svc.service.keys.reload()).rejects.toMatchObject({ code: 'key_unsealed', message: expect.stringMatching(/signing key planted is stored unencrypted although DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE is set/) });
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).not.toContain('planted');
    const forged = await mintAccessToken({ kid: 'planted', keyObject: privateKey }, {
      issuer: svc.url, audience: 'deploy-api', site: 'docs', org: 'acme', scope: 'deployments:write', context: 'production', ttlSeconds: 600, now: t,
      actor: { iss: issuer.url, repository: 'acme/docs', repository_id: '892043217', run_id: '1', run_attempt: '1', workflow_ref: undefined, sha: 'abc', event_name: 'push', ref: 'refs/heads/main' },
    });
    expect((await postForm(`${svc.url}/introspect`, { token: forged.token }, { authorization: `Bearer ${forged.token}` })).body).toEqual({ active: false });

    // Nor is it sealed (and so laundered) at the next start: the database already holds sealed keys.
    await svc.stop();
    await expect(service(url, kek)).rejects.toMatchObject({ code: 'key_unsealed' });
    expect((await db.query("SELECT encryption FROM signing_keys WHERE kid = 'planted'")).rows).toEqual([{ encryption: 'none' }]);
  });

  it('binds created_at, alg and retired_at: a row changed in the database no longer opens', async () => {
    const db = await pool(await server.createDatabase());
    const kek = randomBytes(32);
    const store = dbKeyStore(db, { kek });
    await store.save({ kid: 'a', alg: 'EdDSA', privateJwk: ed25519('a').privateJwk, createdAt: 100, retiredAt: null });
    await store.save({ kid: 'b', alg: 'EdDSA', privateJwk: ed25519('b').privateJwk, createdAt: 200, retiredAt: null });
    // Retiring `a` resealed it with its new retired_at: it still opens.
    expect((await store.list()).map((k) => [k.kid, k.retiredAt])).toEqual([['a', 200], ['b', null]]);
    for (const change of [
      "UPDATE signing_keys SET retired_at = 250 WHERE kid = 'a'", // let a retired key sign for longer
      "UPDATE signing_keys SET retired_at = 999999 WHERE kid = 'a'", // keep it published for longer
      "UPDATE signing_keys SET created_at = 50 WHERE kid = 'b'", // re-date a key
      "UPDATE signing_keys SET alg = 'none' WHERE kid = 'b'",
    ]) {
      const { rows } = await db.query<{ kid: string; alg: string; created_at: string; retired_at: string | null }>('SELECT kid, alg, created_at, retired_at FROM signing_keys');
      await db.query(change);
      await expect(store.list(), change).rejects.toMatchObject({ code: 'key_undecryptable' });
      for (const r of rows) {
        await db.query('UPDATE signing_keys SET alg = $2, created_at = $3, retired_at = $4 WHERE kid = $1', [r.kid, r.alg, r.created_at, r.retired_at]);
      }
      await expect(store.list()).resolves.toHaveLength(2);
    }
  });

  it('refuses keys sealed by earlier versions (kid alone bound) until keys seal reseals them; a v1 row appearing later is refused', async () => {
    const url = await server.createDatabase();
    const kekPath = kekFile('legacy');
    const kek = await readKeyEncryptionKey(kekPath);
    const db = await pool(url);
    const old = ed25519('old');
    await db.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ('old', 'EdDSA', $1, 'aes-256-gcm', $2, NULL)", [
      sealLegacyPrivateJwk(kek, 'old', old.privateJwk),
      now() - 100,
    ]);
    const opened = await openStorage({ dataDir: dir, synchronous: 'FULL', databaseUrl: url });
    toClose.push(() => opened.storage.close());
    await expect(openSigningKeys(opened, { keyEncryptionKeyFile: kekPath })).rejects.toMatchObject({
      code: 'key_legacy_seal',
      message: expect.stringContaining('reseal the database\'s keys once: deploy-sts keys seal'),
    });
    expect(await sealStoredKeys(db, kek)).toEqual({ sealed: [{ kid: 'old', alg: 'EdDSA', createdAt: expect.any(Number), retiredAt: null, was: 'v1' }], alreadySealed: 0 });
    const { keys } = await openSigningKeys(opened, { keyEncryptionKeyFile: kekPath });
    expect(keys.active().kid).toBe('old');
    expect((await db.query("SELECT private_jwk FROM signing_keys WHERE kid = 'old'")).rows[0].private_jwk).toMatch(/^v2\./);

    const later = ed25519('later');
    await db.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ('later', 'EdDSA', $1, 'aes-256-gcm', $2, $2)", [
      sealLegacyPrivateJwk(kek, 'later', later.privateJwk),
      now() - 50,
    ]);
    await expect(keys.reload()).rejects.toMatchObject({ code: 'key_legacy_seal' });
  });
});
