/**
 * What the service says when its SQLite storage's disk or checkpoint thread fails (storage/sqlite.ts): a WAL sync that
 * does not end makes the service not ready (/readyz 503, and a log line saying which file and what to check), and ready
 * again once it ends; a checkpoint thread that fails is logged once as a `storage_warning`. Real services on real
 * SQLite files: the real `fdatasync` runs, and a test holds its answer back as a disk that stops answering would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SyncLane, SyncWal } from '../../exchange-service/storage/group-commit.js';
import { openSqlite } from '../../exchange-service/storage/sqlite.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, startService, type TestService } from '../helpers/service.js';
import { sqliteFiles } from '../helpers/sqlite-files.js';
import { grantRecord } from '../postgres/support/records.js';

/** The stall limit in these tests (default SYNC_STALL_MS, 5 s). */
const STALL_MS = 300;

/**
 * The real WAL sync, whose answers on `lanes` (the WAL's two descriptors) are held back while the disk is "stalled",
 * and given once it is released — or failed with `error`, as a disk that comes back with an I/O error.
 */
function stallableDisk(lanes: readonly SyncLane[] = [0, 1]) {
  let stalled = false;
  const held: ((error?: Error) => void)[] = [];
  return {
    wrapSyncWal: (sync: SyncWal): SyncWal => (lane, done) =>
      sync(lane, (error) => {
        if (stalled && lanes.includes(lane)) held.push((failure) => done(failure ?? error));
        else done(error);
      }),
    stall() {
      stalled = true;
    },
    /** Syncs whose answers are held. */
    get held() {
      return held.length;
    },
    release(error?: Error) {
      stalled = false;
      for (const answer of held.splice(0)) answer(error);
    },
  };
}

/** A service with these hooks, stopped after the test (a stalled disk released first: closing waits for its syncs). */
async function serviceWith(
  hooks: Parameters<typeof startService>[0]['sqliteTestHooks'],
  options: { env?: Record<string, string>; disk?: ReturnType<typeof stallableDisk> } = {},
): Promise<{ issuer: TestIssuer; svc: TestService }> {
  const issuer = await startIssuer();
  const svc = await startService({ issuer: issuer.url, sqliteTestHooks: hooks, env: options.env ?? {} });
  onTestFinished(async () => {
    options.disk?.release();
    await svc.stop();
    await issuer.close();
  });
  return { issuer, svc };
}

const readyz = async (svc: TestService) => {
  const res = await fetch(`${svc.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const logLines = (svc: TestService, msg: string) =>
  svc.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

describe('a disk that stops answering a WAL sync', () => {
  it('makes the service not ready once the sync has run past the limit, saying which file and what to check', async () => {
    const disk = stallableDisk();
    const { issuer, svc } = await serviceWith({ wrapSyncWal: disk.wrapSyncWal, syncStallMs: STALL_MS }, { disk });
    expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    expect(await readyz(svc)).toEqual({ status: 200, body: { status: 'ready' } });

    disk.stall();
    const waiting = exchangeToken(svc.url, await issuer.token());
    // Within the limit a slow sync is only slow: still ready.
    await sleep(50);
    expect(disk.held).toBeGreaterThan(0);
    expect((await readyz(svc)).status).toBe(200);

    await sleep(STALL_MS);
    const notReady = await readyz(svc);
    expect(notReady.status).toBe(503);
    // The public answer names no file; the log line says what is wrong and where.
    expect(notReady.body).toEqual({ status: 'not ready', reason: 'storage is unavailable or the service is shutting down' });
    const [line] = logLines(svc, 'not ready');
    expect(line?.error).toMatch(
      /^no sync of the write-ahead log \(.*deploy-sts\.sqlite-wal\) has finished in 0\.\d s, and every exchange waits for one: the disk is not answering \(check the device: dmesg, iostat\), or every thread of Node's I\/O pool is busy/,
    );
    expect(line?.error).toContain(svc.dataDir);

    // The exchange it held is answered once the disk is, and the service is ready again.
    disk.release();
    expect((await waiting).status).toBe(200);
    expect(await readyz(svc)).toEqual({ status: 200, body: { status: 'ready' } });
  });

  it('stays ready while one of the WAL\'s two descriptors is stuck and syncs on the other end', async () => {
    const disk = stallableDisk([0]);
    const { issuer, svc } = await serviceWith({ wrapSyncWal: disk.wrapSyncWal, syncStallMs: STALL_MS }, { disk });
    disk.stall();
    const first = exchangeToken(svc.url, await issuer.token());
    // The second only once the first's sync (lane 0) is held: else both share one batch and that one sync.
    while (disk.held === 0) await sleep(5);
    // Its sync begins beside the stuck one, on lane 1, and its end answers both.
    expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    expect((await first).status).toBe(200);
    await sleep(STALL_MS + 50);
    for (let i = 0; i < 3; i++) expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    expect(disk.held).toBe(1);
    expect((await readyz(svc)).status).toBe(200);
  });

  it('stays not ready when the stalled sync ends in an error: the storage stops for good, and says what to do', async () => {
    const disk = stallableDisk();
    const { issuer, svc } = await serviceWith({ wrapSyncWal: disk.wrapSyncWal, syncStallMs: STALL_MS }, { disk });
    disk.stall();
    const waiting = exchangeToken(svc.url, await issuer.token());
    await sleep(STALL_MS + 50);
    expect((await readyz(svc)).status).toBe(503);
    disk.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const answer = await waiting;
    expect(answer.status).toBe(503);
    expect(answer.body).not.toHaveProperty('access_token');
    expect((await readyz(svc)).status).toBe(503);
    expect(logLines(svc, 'not ready').at(-1)?.error).toMatch(/could not sync its write-ahead log \(EIO: i\/o error, fdatasync\); mend the disk and reboot the host/);
  });
});

describe('a checkpoint thread that fails', () => {
  it('is logged once as a storage_warning, with the cause and what to do', async () => {
    const { issuer, svc } = await serviceWith(
      { checkpointThread: () => new Worker(`process.exit(4)`, { eval: true }) },
      // 210 exchanges from one address and repository.
      { env: { DEPLOY_STS_RATE_LIMIT_IP: '0', DEPLOY_STS_RATE_LIMIT_REPOSITORY: '0' } },
    );
    // The thread starts after 200 commits: one exchange at a time, each its own commit.
    for (let i = 0; i < 210; i++) expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    await sleep(100);
    const warnings = svc.logs.filter((l) => l.includes('"event":"storage_warning"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 40,
      msg: 'the SQLite checkpoint thread stopped (the thread exited (code 4)); checkpoints now run on the event loop, which slows answers under load; restart the service to start the thread again',
    });
    // It goes on answering, with SQLite's own checkpoints.
    expect((await exchangeToken(svc.url, await issuer.token())).status).toBe(200);
    expect((await readyz(svc)).status).toBe(200);
  });
});

describe('the storage\'s readiness (ping)', () => {
  const files = sqliteFiles('deploy-sts-stalled-sync-');
  const ISSUER = 'https://token.actions.githubusercontent.com';

  it('fails while a sync runs past the limit, and not before; an ended sync answers its writes and readiness returns', async () => {
    const disk = stallableDisk();
    const storage = files.storage(openSqlite(files.dataDir(), { synchronous: 'FULL', wrapSyncWal: disk.wrapSyncWal, syncStallMs: STALL_MS }));
    const record = (jti: string) => storage.recordExchange({ issuer: ISSUER, jti, expiresAt: 2_000_000_000 }, () => grantRecord());
    expect(await record('a')).toBe('first');
    await storage.ping();

    disk.stall();
    try {
      let answered = false;
      const held = record('b').then((use) => {
        answered = true;
        return use;
      });
      await sleep(STALL_MS / 2);
      await storage.ping();
      await sleep(STALL_MS);
      await expect(storage.ping()).rejects.toThrow(/no sync of the write-ahead log \(.*\) has finished in 0\.\d s/);
      expect(answered).toBe(false);

      disk.release();
      expect(await held).toBe('first');
      await storage.ping();
    } finally {
      // Closing the storage waits for its syncs.
      disk.release();
    }
  });

  it('is not affected under NORMAL, which does not sync the WAL before answering', async () => {
    const disk = stallableDisk();
    const storage = files.storage(openSqlite(files.dataDir(), { synchronous: 'NORMAL', wrapSyncWal: disk.wrapSyncWal, syncStallMs: 1 }));
    disk.stall();
    expect(await storage.recordExchange({ issuer: ISSUER, jti: 'c', expiresAt: 2_000_000_000 }, () => grantRecord())).toBe('first');
    await sleep(20);
    await storage.ping();
    expect(disk.held).toBe(0);
  });
});
