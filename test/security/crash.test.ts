/**
 * Crash safety, with the real CLI in a child process on a temp data directory. SIGKILL lands in the middle of a
 * burst of concurrent exchanges and revocations; afterwards the database is intact, every token that reached a
 * client has its audit record, every acknowledged revocation holds, and the replay cache still refuses every
 * subject token that was accepted — across a restart. And SIGTERM drains an in-flight exchange before exiting.
 */
import { rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../../exchange-service/storage/sqlite.js';
import { claimsOf } from '../helpers/forge.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, postForm, spawnService, tempDir } from '../helpers/service.js';
import { NO_RATE_LIMITS } from './support.js';

const EXCHANGES = 200;
const CONCURRENCY = 20;
/** SIGKILL once this many exchanges have been answered. */
const KILL_AFTER = 60;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function integrity(dataDir: string): string {
  const db = new DatabaseSync(join(dataDir, 'deploy-sts.sqlite'));
  try {
    const rows = db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

describe('SIGKILL in the middle of a burst of exchanges', () => {
  let issuer: TestIssuer;
  const dataDir = tempDir('deploy-sts-crash-');

  beforeAll(async () => {
    issuer = await startIssuer();
  });
  afterAll(async () => {
    await issuer?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses no acknowledged grant, revocation or replay entry, and leaves an intact database', async () => {
    const service = await spawnService({ issuer: issuer.url, dataDir, env: NO_RATE_LIMITS });
    const subjects = await Promise.all(Array.from({ length: EXCHANGES }, () => issuer.token()));

    /** Answers that reached the client: the subject token that was accepted and the jti of the token returned. */
    const granted: { subject: string; tokenJti: string }[] = [];
    const revoked: string[] = [];
    let answered = 0;
    let failed = 0;
    let killed: Promise<number | null> | undefined;

    const queue = [...subjects];
    const worker = async () => {
      for (let subject = queue.shift(); subject !== undefined; subject = queue.shift()) {
        try {
          const res = await exchangeToken(service.url, subject);
          answered++;
          expect(res.status).toBe(200);
          const token = String(res.body.access_token);
          granted.push({ subject, tokenJti: String(claimsOf(token).jti) });
          if (granted.length % 4 === 0) {
            try {
              const ack = await postForm(`${service.url}/revoke`, { token });
              if (ack.status === 200) revoked.push(String(claimsOf(token).jti));
            } catch {
              // the revocation was cut off by the kill: it was never acknowledged
            }
          }
        } catch {
          failed++;
        }
        if (killed === undefined && answered >= KILL_AFTER) killed = service.stop('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(killed, 'the kill happened').toBeDefined();
    expect(await killed).toBeNull(); // killed by the signal, no exit code
    expect(service.child.signalCode).toBe('SIGKILL');

    // The kill landed mid-burst: some exchanges were answered, others never were.
    expect(granted.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(failed).toBeGreaterThan(0);
    expect(granted.length + failed).toBe(EXCHANGES);
    expect(revoked.length).toBeGreaterThan(0);

    // The file as the crash left it is intact.
    expect(integrity(dataDir)).toBe('ok');

    const restarted = await spawnService({ issuer: issuer.url, dataDir, env: NO_RATE_LIMITS });
    try {
      const storage = openSqlite(dataDir, { lock: false }); // beside the serving process, as the CLI's verbs
      try {
        for (const { tokenJti } of granted) {
          const record = await storage.findToken(tokenJti);
          expect(record, `audit record of returned token ${tokenJti}`).toBeDefined();
          expect(record).toMatchObject({ site: 'docs', context: 'production' });
        }
        for (const jti of revoked) expect(await storage.isRevoked(jti), `acknowledged revocation of ${jti}`).toBe(true);
      } finally {
        await storage.close();
      }

      // Every subject token accepted before the crash is still spent.
      const replays = await Promise.all(granted.map(({ subject }) => exchangeToken(restarted.url, subject)));
      for (const replay of replays) {
        expect(replay.status).toBe(400);
        expect(replay.body.error).toBe('invalid_request');
        expect(String(replay.body.error_description)).toContain('already exchanged');
      }
      // And the restarted service works.
      expect((await exchangeToken(restarted.url, await issuer.token())).status).toBe(200);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
    expect(integrity(dataDir)).toBe('ok');
  });
});

describe('SIGTERM', () => {
  it('drains an in-flight exchange: it is answered, new connections are refused, and the process exits 0', async () => {
    const issuer = await startIssuer();
    const dataDir = tempDir('deploy-sts-drain-');
    try {
      issuer.setJwksBehaviour('hang');
      const service = await spawnService({ issuer: issuer.url, dataDir, env: NO_RATE_LIMITS });
      const inFlight = exchangeToken(service.url, await issuer.token());
      await until(() => (issuer.requests['/.well-known/jwks'] ?? 0) >= 1, 'the exchange to reach the JWKS fetch');

      service.child.kill('SIGTERM');
      await until(() => service.stdout.join('').includes('draining'), 'the service to start draining');
      await expect(fetch(`${service.url}/healthz`)).rejects.toThrow();

      // Cut the hanging JWKS response: the in-flight exchange fails closed, and its answer still reaches the client.
      await issuer.close();
      const answer = await inFlight;
      expect(answer.status).toBe(503);
      expect(answer.body.error).toBe('temporarily_unavailable');
      expect(answer.body).not.toHaveProperty('access_token');
      expect(await service.stop()).toBe(0);

      const storage = openSqlite(dataDir);
      try {
        const [record] = await storage.listAudit({ limit: 1 });
        expect(record).toMatchObject({ result: 'denied', reason: 'jwks_unavailable' });
      } finally {
        await storage.close();
      }
    } finally {
      await issuer.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('gives up after 10 s on a request that does not finish: logs shutdown_forced, saying why, and exits 1', async () => {
    const issuer = await startIssuer();
    const dataDir = tempDir('deploy-sts-forced-');
    const client = new Socket();
    try {
      const service = await spawnService({ issuer: issuer.url, dataDir, env: NO_RATE_LIMITS });
      // A request whose body never finishes arriving (the slow-body limit is 30 s): in flight for as long as it likes.
      const { port } = new URL(service.url);
      await new Promise<void>((resolve, reject) => client.connect(Number(port), '127.0.0.1', resolve).once('error', reject));
      client.write('POST /token HTTP/1.1\r\nHost: deploy-sts\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=');
      await new Promise((r) => setTimeout(r, 200));

      const signalled = performance.now();
      service.child.kill('SIGTERM');
      expect(await service.stop()).toBe(1);
      expect(performance.now() - signalled).toBeGreaterThanOrEqual(9_500);
      const lines = service.stdout.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.event === 'shutdown_forced')).toMatchObject({
        level: 50,
        msg: 'the service did not stop within 10 s (a request still in flight, or a write-ahead log sync the disk has not answered); exiting with code 1',
      });
    } finally {
      client.destroy();
      await issuer.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
