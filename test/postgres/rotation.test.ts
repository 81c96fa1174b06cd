/**
 * Key rotation with the keys in PostgreSQL: a rotation made anywhere (what `deploy-sts keys rotate` does) reaches
 * every replica at its next key reload — the next key published at once, signing only after the JWKS cache
 * lifetime — and tokens signed before it keep verifying everywhere.
 * The replicas run in this process here so the test can trigger the reload the service's 30-second timer performs.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWKS_MAX_AGE_SECONDS, KeyRing } from '../../exchange-service/keys/key-ring.js';
import { openSigningKeys } from '../../exchange-service/keys/open.js';
import { openStorage } from '../../exchange-service/storage/open.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';

const PUBLIC_URL = 'https://sts.rotation.test';

describe.skipIf(SKIP_POSTGRES)('rotating the signing key of replicas that share PostgreSQL', () => {
  let server: TestPostgres;
  let issuer: TestIssuer;
  let databaseUrl: string;
  let kek: string;
  const secrets = tempDir('deploy-sts-secrets-');
  const replicas: TestService[] = [];

  beforeAll(async () => {
    issuer = await startIssuer();
    server = await startPostgres();
    databaseUrl = await server.createDatabase();
    kek = join(secrets, 'kek');
    writeFileSync(kek, randomBytes(32).toString('hex'), { mode: 0o600 });
    const env = {
      DEPLOY_STS_PUBLIC_URL: PUBLIC_URL,
      DEPLOY_STS_DATABASE_URL: databaseUrl,
      DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek,
      DEPLOY_STS_WATCH_POLICIES: '0',
    };
    await Promise.all([0, 1].map(async () => replicas.push(await startService({ issuer: issuer.url, env }))));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await issuer?.close();
    await server?.stop();
    rmSync(secrets, { recursive: true, force: true });
  });

  const address = (r: TestService) => `http://127.0.0.1:${r.service.port}`;
  const jwksOf = async (r: TestService) => (await (await fetch(`${address(r)}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const mint = async (r: TestService) => String((await exchangeToken(address(r), await issuer.token())).body.access_token);

  it('reaches every replica, which publishes the next key at once and signs with it only after the JWKS cache lifetime', async () => {
    const [a, b] = replicas as [TestService, TestService];
    const before = await mint(a);
    const oldKid = decodeProtectedHeader(before).kid;

    // What `deploy-sts keys rotate` does against the database.
    const operator = await openStorage({ dataDir: secrets, synchronous: 'FULL', databaseUrl });
    const fresh = await (await openSigningKeys(operator, { keyEncryptionKeyFile: kek })).keys.rotate();
    await operator.storage.close();
    expect(fresh.kid).not.toBe(oldKid);
    expect(fresh.createdAt - Math.floor(Date.now() / 1000)).toBeGreaterThanOrEqual(JWKS_MAX_AGE_SECONDS - 2);

    await Promise.all(replicas.map((r) => r.service.keys.reload()));
    for (const replica of replicas) {
      expect((await jwksOf(replica)).keys.map((k) => k.kid).sort()).toEqual([oldKid, fresh.kid].sort());
      expect(decodeProtectedHeader(await mint(replica)).kid).toBe(oldKid);
      expect(replica.service.keys.next()?.kid).toBe(fresh.kid);
    }

    // 300 s later (a rotation made by an operator whose clock is that far behind stands in for the wait): the
    // next key signs on every replica, and tokens signed before keep verifying everywhere.
    const later = await openStorage({ dataDir: secrets, synchronous: 'FULL', databaseUrl });
    const { keyStore } = await openSigningKeys(later, { keyEncryptionKeyFile: kek });
    const behind = await KeyRing.open(keyStore, () => Math.floor(Date.now() / 1000) - JWKS_MAX_AGE_SECONDS);
    const signingNow = await behind.rotate();
    await later.storage.close();
    await Promise.all(replicas.map((r) => r.service.keys.reload()));
    for (const replica of replicas) expect(decodeProtectedHeader(await mint(replica)).kid).toBe(signingNow.kid);
    // Signed before the rotation by A, verified after it by B.
    await expect(jwtVerify(before, createLocalJWKSet(await jwksOf(b)), { issuer: PUBLIC_URL })).resolves.toBeDefined();
    await expect(jwtVerify(await mint(b), createLocalJWKSet(await jwksOf(a)), { issuer: PUBLIC_URL })).resolves.toBeDefined();
  });
});
