/**
 * Two replica processes of the built CLI (`npm test` builds first) on one PostgreSQL database, as they run behind a
 * load balancer: one public URL, their own data directories, nothing shared but the database.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, postgresStorage } from '../../exchange-service/storage/postgres.js';
import type { Storage } from '../../exchange-service/storage/types.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { freePort, SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { ROOT, exchangeToken, postForm, spawnService, tempDir, type SpawnedService } from '../helpers/service.js';

const PUBLIC_URL = 'https://sts.replicas.test';

interface Replica {
  /** Where this replica really listens (the public URL is shared). */
  address: string;
  process: SpawnedService;
}

async function jwksOf(replica: Replica): Promise<JSONWebKeySet> {
  return (await (await fetch(`${replica.address}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
}

async function readyz(replica: Replica): Promise<number> {
  return (await fetch(`${replica.address}/readyz`)).status;
}

function introspect(replica: Replica, token: string) {
  return postForm(`${replica.address}/introspect`, { token }, { authorization: `Bearer ${token}` });
}

/** Poll `check` until it holds; fail after `attempts` tries (bounded, no timing assertion). */
async function eventually(what: string, check: () => Promise<boolean>, attempts = 100, pauseMs = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(`gave up waiting: ${what}`);
}

describe.skipIf(SKIP_POSTGRES)('replicas sharing one PostgreSQL database', () => {
  let server: TestPostgres;
  let issuer: TestIssuer;
  let audit: Storage;
  const replicas: Replica[] = [];
  const dirs: string[] = [];
  let databaseUrl: string;
  let kek: string;

  beforeAll(async () => {
    issuer = await startIssuer();
    server = await startPostgres();
    databaseUrl = await server.createDatabase();
    const secrets = tempDir('deploy-sts-secrets-');
    dirs.push(secrets);
    kek = join(secrets, 'kek');
    writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
    // Both start at the same moment on an empty database: migrations and the first key must not race.
    await Promise.all(
      [0, 1].map(async () => {
        const dataDir = tempDir();
        dirs.push(dataDir);
        // The replicas share a public URL, so each gets a port chosen here (retried if taken meanwhile).
        for (let attempt = 1; ; attempt++) {
          const port = await freePort();
          try {
            const child = await spawnService({
              issuer: issuer.url,
              dataDir,
              env: {
                DEPLOY_STS_PORT: String(port),
                DEPLOY_STS_PUBLIC_URL: PUBLIC_URL,
                DEPLOY_STS_DATABASE_URL: databaseUrl,
                DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek,
                DEPLOY_STS_RATE_LIMIT_IP: '0',
                DEPLOY_STS_RATE_LIMIT_REPOSITORY: '0',
                DEPLOY_STS_WATCH_POLICIES: '0',
              },
            });
            replicas.push({ address: `http://127.0.0.1:${port}`, process: child });
            return;
          } catch (error) {
            if (attempt >= 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
          }
        }
      }),
    );
    audit = postgresStorage(createPool(databaseUrl));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    await audit?.close();
    await issuer?.close();
    await server?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const [a, b] = [() => replicas[0]!, () => replicas[1]!];

  it('start together on an empty database and publish the same signing keys', async () => {
    const [jwksA, jwksB] = await Promise.all([jwksOf(a()), jwksOf(b())]);
    expect(jwksA.keys).toHaveLength(1);
    expect(jwksB).toEqual(jwksA);
  });

  it('show the database in the banner without its password', () => {
    for (const replica of replicas) {
      const banner = replica.process.stderr.join('');
      expect(banner).toMatch(/storage\s+postgres \(postgres:\/\/sts:\*\*\*@127\.0\.0\.1:\d+\/\w+, signing keys in the database, sealed with AES-256-GCM\)/);
      expect(banner + replica.process.stdout.join('')).not.toContain(server.password);
    }
  });

  it('mint tokens at one replica that verify against the JWKS of the other', async () => {
    for (const [minter, verifier] of [[a(), b()], [b(), a()]] as const) {
      const granted = await exchangeToken(minter.address, await issuer.token());
      expect(granted.status).toBe(200);
      const token = String(granted.body.access_token);
      const { payload } = await jwtVerify(token, createLocalJWKSet(await jwksOf(verifier)), { issuer: PUBLIC_URL, typ: 'at+jwt' });
      expect(payload.site).toBe('docs');
      expect((await introspect(verifier, token)).body.active).toBe(true);
    }
  });

  it('grant a subject token sent to both at the same instant exactly once', async () => {
    for (let round = 0; round < 5; round++) {
      const subject = await issuer.token();
      const answers = await Promise.all([exchangeToken(a().address, subject), exchangeToken(b().address, subject)]);
      expect(answers.map((x) => x.status).sort()).toEqual([200, 400]);
      const replay = answers.find((x) => x.status === 400)!;
      expect(String(replay.body.error_description)).toContain('already exchanged');
      expect(replay.body.access_token).toBeUndefined();
    }
  });

  it('honour a revocation made at one replica at the other at once', async () => {
    const token = String((await exchangeToken(a().address, await issuer.token())).body.access_token);
    expect((await introspect(b(), token)).body.active).toBe(true);
    expect((await postForm(`${b().address}/revoke`, { token })).status).toBe(200);
    expect((await introspect(a(), token)).body).toEqual({ active: false });
    expect((await introspect(b(), token)).body).toEqual({ active: false });
  });

  it('keep one audit log holding the decisions of both', async () => {
    const granted = await Promise.all([a(), b()].map(async (r) => String((await exchangeToken(r.address, await issuer.token())).body.access_token)));
    const jtis = granted.map((t) => String(decodeJwt(t).jti));
    for (const jti of jtis) expect((await audit.findToken(jti))?.site).toBe('docs');
    const listed = (await audit.listTokens({ now: Math.floor(Date.now() / 1000), limit: 1000 })).map((t) => t.jti);
    expect(listed).toEqual(expect.arrayContaining(jtis));
  });

  it('take up a `deploy-sts keys rotate` run anywhere, at every replica, on SIGHUP', async () => {
    const before = await jwksOf(a());
    const oldToken = String((await exchangeToken(a().address, await issuer.token())).body.access_token);
    const rotated = await promisify(execFile)(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), 'keys', 'rotate'], {
      env: { PATH: process.env.PATH ?? '', DEPLOY_STS_DATABASE_URL: databaseUrl, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek, DEPLOY_STS_DATA_DIR: tempDir() },
    });
    const newKid = /new signing key (\S+) is published now and signs from /.exec(rotated.stdout)![1]!;
    const oldKid = JSON.parse(Buffer.from(oldToken.split('.')[0]!, 'base64url').toString()).kid as string;
    expect(rotated.stdout + rotated.stderr).not.toContain(databaseUrl);
    for (const replica of replicas) replica.process.child.kill('SIGHUP');
    for (const replica of replicas) {
      await eventually('the rotated key at every replica', async () => (await jwksOf(replica)).keys.some((k) => k.kid === newKid));
      // Published first: the replicas keep signing with the current key for the JWKS cache lifetime (300 s).
      const minted = String((await exchangeToken(replica.address, await issuer.token())).body.access_token);
      expect(JSON.parse(Buffer.from(minted.split('.')[0]!, 'base64url').toString()).kid).toBe(oldKid);
      expect((await jwksOf(replica)).keys.map((k) => k.kid)).toEqual(expect.arrayContaining(before.keys.map((k) => k.kid)));
      expect((await introspect(replica, oldToken)).body.active).toBe(true);
    }
  });

  it('fail closed while the database is down and serve again once it is back, without a restart', async () => {
    const pids = replicas.map((r) => r.process.child.pid);
    const issuedBefore = String((await exchangeToken(a().address, await issuer.token())).body.access_token);
    type Phase = 'up' | 'down' | 'restarting' | 'back';
    const results: { phase: Phase; status: number; token?: string }[] = [];
    let phase: Phase = 'up';
    let running = true;
    const count = (p: Phase, status: number) => results.filter((r) => r.phase === p && r.status === status).length;
    // Traffic to both replicas throughout: bounded by `running` and by the test's own timeout.
    const traffic = (async () => {
      for (let i = 0; running && i < 5000; i++) {
        const replica = replicas[i % 2]!;
        const at = phase;
        const answer = await exchangeToken(replica.address, await issuer.token());
        results.push({ phase: at, status: answer.status, token: answer.body.access_token as string | undefined });
      }
    })();
    try {
      await eventually('grants before the outage', async () => count('up', 200) >= 4);
      await server.stopServer();
      phase = 'down';
      await eventually('refusals during the outage', async () => count('down', 503) >= 4);
      for (const replica of replicas) {
        expect(await readyz(replica)).toBe(503);
        // Without the revocation list no replica may call a token active.
        const introspection = await introspect(replica, issuedBefore);
        expect(introspection.status).toBe(503);
        expect(introspection.body.active).toBeUndefined();
      }

      phase = 'restarting';
      await server.startServer();
      await eventually('both replicas ready again', async () => (await readyz(a())) === 200 && (await readyz(b())) === 200);
      phase = 'back';
      await eventually('grants after the outage', async () => count('back', 200) >= 4);
    } finally {
      running = false;
      await traffic;
    }

    // Only two answers are possible: a token, or a 503 without one. Never an error page, never a token without a record.
    expect(new Set(results.map((r) => r.status))).toEqual(new Set([200, 503]));
    for (const r of results.filter((x) => x.status !== 200)) expect(r.token).toBeUndefined();
    expect(count('down', 200)).toBe(0);
    for (const r of results.filter((x) => x.status === 200)) {
      expect(await audit.findToken(String(decodeJwt(r.token!).jti))).toBeDefined();
    }
    expect(replicas.map((r) => r.process.child.pid)).toEqual(pids);
    expect(replicas.every((r) => r.process.child.exitCode === null)).toBe(true);
    expect((await introspect(b(), issuedBefore)).body.active).toBe(true);
    for (const replica of replicas) expect(replica.process.stderr.join('') + replica.process.stdout.join('')).not.toContain(server.password);
  });
});
