/**
 * Attacks on "one service per SQLite data directory": the replay check of SQLite lives in the serving process's
 * memory, and `serve` holds a lock beside the database (DATA_DIR/deploy-sts.sqlite.lock) so that no second process
 * serves the same database.
 * The invariant: a GitHub OIDC token (issuer, jti, exp) is exchanged at most once — across restarts, and with no
 * second process exchanging from the same SQLite database, however the operator spells or arranges the directory,
 * and whatever an operator's tools do to the files in it; during an upgrade too. The attacker holds a captured token
 * (or is a misbehaving but trusted issuer); the operator is unlucky, not malicious.
 */
import { existsSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { StatementSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { DATABASE_FILE, ENV, useServingProcesses } from './serving-lock-support.js';
import { LOCK_FILE, lockDatabase } from '../../exchange-service/storage/data-dir-lock.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../exchange-service/storage/sqlite.js';
import { cli } from '../helpers/cli.js';
import { sqliteAtVersion } from '../helpers/schema-version.js';
import { exchangeToken, startService, type SpawnedService } from '../helpers/service.js';
import { until } from '../install/support.js';

const processes = useServingProcesses('deploy-sts-lock-');
const { dir, serve, serving, refusedBeside } = processes;

describe('a second serve on the same data directory, spelled another way', () => {
  it('is refused through a trailing slash, a relative path, a ../ detour and a symlinked directory', async () => {
    const dataDir = dir();
    const first = await serving(dataDir);
    const link = `${dataDir}-link`;
    symlinkSync(dataDir, link);
    processes.remember(link);
    const spellings = [`${dataDir}/`, relative(process.cwd(), dataDir), join(dataDir, '..', dataDir.split('/').pop()!), link];
    for (const spelling of spellings) {
      const second = await serve(spelling);
      expect(typeof second, `${spelling}: a second serve started`).toBe('string');
      expect(second).toContain('another deploy-sts serve is using the database');
    }
  }, 60_000);
});

describe('the CLI verbs beside a serving process', () => {
  // Held: the verbs open the storage without the lock (and never the lock file), in processes of their own.
  it('leave the lock held and every exchanged token spent: a second serve is still refused afterwards', async () => {
    const dataDir = dir();
    const first = await serving(dataDir);
    const subject = await processes.issuer().token();
    const granted = await exchangeToken(first.url, subject);
    expect(granted.status).toBe(200);
    const jti = JSON.parse(Buffer.from(String(granted.body.access_token).split('.')[1]!, 'base64url').toString()).jti as string;
    const env = { DEPLOY_STS_DATA_DIR: dataDir };
    const verbs = await Promise.all([
      cli(['tokens', 'list'], env),
      cli(['audit', '--since', '1h'], env),
      cli(['tokens', 'revoke', jti], env),
      cli(['keys', 'rotate'], env),
    ]);
    for (const verb of verbs) expect(verb.code, verb.stderr).toBe(0);
    expect((await exchangeToken(first.url, subject)).status, 'a replay after the verbs').toBe(400);
    const second = await serve(dataDir);
    expect(second, 'a second serve after the verbs ran').toEqual(expect.stringContaining('another deploy-sts serve'));
  }, 60_000);
});

describe('a second serve on another data directory whose database file is the serving one', () => {
  // The storage follows a symbolic link to the database file on purpose (sqlite.ts: "a database file linked from
  // another volume has its WAL there"): the lock is beside the database the link leads to.
  it('is refused through a symbolic link, so no token is granted twice', async () => {
    const a = dir();
    const b = dir();
    const first = await serving(a);
    symlinkSync(join(a, DATABASE_FILE), join(b, DATABASE_FILE));
    await refusedBeside(first, b);
  }, 60_000);

  it('is refused through a hard link, which SQLite cannot serve safely either, and says why', async () => {
    const a = dir();
    const b = dir();
    const first = await serving(a);
    linkSync(join(a, DATABASE_FILE), join(b, DATABASE_FILE));
    const second = await serve(b);
    expect(second, 'the second serve started on the same database').toEqual(expect.stringContaining('has 2 hard links'));
    expect(second).toContain('Keep one name (a symbolic link is fine)');
  }, 60_000);
});

describe('the lock file removed from under the serving process', () => {
  // An operator's clean-up (tmpfiles, a script that clears "stale lock files", `rm DATA_DIR/*.lock` after a crash as
  // pid-file habits teach) unlinks or renames the lock file while serve runs: the serving process still holds its
  // lock, on a file no longer reachable by the name. It notices within LOCK_CHECK_MS and locks the new name.
  for (const how of ['deleted', 'renamed'] as const) {
    it(`(${how}) is taken again by the serving process, so a second serve is still refused`, async () => {
      const dataDir = dir();
      const first = await serving(dataDir);
      const lockFile = join(dataDir, LOCK_FILE);
      if (how === 'deleted') rmSync(lockFile);
      else renameSync(lockFile, `${lockFile}.old`);
      await until(() => existsSync(lockFile), 'the serving process to lock the file again', 5_000);
      await refusedBeside(first, dataDir);
    }, 60_000);
  }

  it('(moved away again and again) stops the service after a few, rather than hold one file per move', async () => {
    const dataDir = dir();
    const service = await startService({ issuer: processes.issuer().url, dataDir, env: ENV });
    const lockFile = join(dataDir, LOCK_FILE);
    try {
      // Seven moves: each time the service locks a new file at the name, and keeps the moved one locked (a name still
      // leads to it): it holds eight.
      for (let i = 1; i <= 7; i++) {
        renameSync(lockFile, `${lockFile}.${i}`);
        await until(() => existsSync(lockFile), 'the service to lock the file again', 5_000);
      }
      expect((await exchangeToken(service.url, await processes.issuer().token())).status).toBe(200);
      expect(service.logs.join('\n')).toContain(`the lock file ${lockFile} was deleted or moved while this service held it`);
      renameSync(lockFile, `${lockFile}.8`);
      await until(async () => (await fetch(`${service.url}/readyz`)).status === 503, 'the service to stop', 5_000);
      expect(existsSync(lockFile)).toBe(false);
      expect((await exchangeToken(service.url, await processes.issuer().token())).status).toBe(503);
      expect(service.logs.join('\n')).toContain(`the lock file ${lockFile} was moved away 8 times while this service held it`);
    } finally {
      await service.stop();
    }
  }, 30_000);

  it('(deleted, and locked by another process before the service noticed) stops the service exchanging, and says why', async () => {
    const dataDir = dir();
    const service = await startService({ issuer: processes.issuer().url, dataDir, env: ENV });
    let other: ReturnType<typeof lockDatabase> | undefined;
    try {
      const token = await processes.issuer().token();
      // Synchronously, so the service's own check (on this event loop) cannot come in between.
      rmSync(join(dataDir, LOCK_FILE));
      other = lockDatabase(dataDir, join(dataDir, DATABASE_FILE));
      const refused = await exchangeToken(service.url, token);
      expect(refused.status).toBe(503);
      expect(refused.body).not.toHaveProperty('access_token');
      const ready = await fetch(`${service.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(service.logs.join('\n')).toContain(`the lock file ${join(dataDir, LOCK_FILE)} was deleted or replaced while this service held it`);
      // Lost for good: the other process giving its lock back does not make this one the only checker again.
      other.release();
      other = undefined;
      expect((await exchangeToken(service.url, await processes.issuer().token())).status).toBe(503);
    } finally {
      other?.release();
      await service.stop();
    }
  }, 30_000);
});

describe('upgrading while the previous release still serves', () => {
  // The release before the replay check moved into memory checked replays in SQLite: `INSERT … ON CONFLICT DO NOTHING`
  // on the replay table's primary key (expires_at, issuer, jti), a replay being a statement that changed no row; it
  // takes no lock. The older process is stood in for by its own statement, verbatim, on a connection held open as it
  // holds one.
  const olderRelease = (dataDir: string) => {
    const older = sqliteAtVersion(join(dataDir, DATABASE_FILE), 5);
    older.exec('PRAGMA busy_timeout = 5000');
    const consume: StatementSync = older.prepare('INSERT INTO replay (issuer, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    const exp = Math.floor(Date.now() / 1000) + 300;
    const firstUse = (jti: string): boolean | 'failed closed' => {
      try {
        return Number(consume.run(processes.issuer().url, jti, exp).changes) === 1;
      } catch {
        return 'failed closed';
      }
    };
    return { firstUse, close: () => older.close() };
  };

  it('a verb of this release (without the lock) leaves the database as it is, and says to restart the service first', async () => {
    const dataDir = dir();
    const older = olderRelease(dataDir);
    try {
      expect(older.firstUse('before-upgrade')).toBe(true);
      for (const verb of [['tokens', 'list'], ['audit'], ['tokens', 'revoke', 'some-jti']]) {
        const ran = await cli([...verb, '--data-dir', dataDir], { DEPLOY_STS_DATA_DIR: dataDir });
        expect(ran.code, ran.stderr).toBe(1);
        expect(ran.stderr).toContain(`the database has schema version 5, older than this deploy-sts (${SQLITE_MIGRATIONS.length}), and this command does not upgrade it`);
        expect(ran.stderr).toContain('Restart the service with this release');
      }
      expect(older.firstUse('before-upgrade'), 'the older service still refuses the replay').toBe(false);
    } finally {
      older.close();
    }
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(join(dataDir, DATABASE_FILE), { readOnly: true });
    try {
      expect(Number((db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number }).v)).toBe(5);
    } finally {
      db.close();
    }
  }, 60_000);

  it('a serve of this release started beside it upgrades the database, and the older one then fails closed instead of granting replays', async () => {
    const dataDir = dir();
    const older = olderRelease(dataDir);
    try {
      expect(older.firstUse('before-upgrade')).toBe(true);
      const started = await serving(dataDir);
      expect(older.firstUse('before-upgrade')).toBe('failed closed');
      expect(older.firstUse('a-fresh-one')).toBe('failed closed');
    } finally {
      older.close();
    }
  }, 60_000);
});

describe('a trusted issuer that signs a jti which is not well-formed UTF-16', () => {
  // The replay table stores the jti as UTF-8, where a lone surrogate becomes U+FFFD; the memory keys it the same way,
  // so the row read back at the next start still names the token.
  it('is exchanged once across a restart', async () => {
    const dataDir = dir();
    const claims = processes.issuer().claims({ jti: '\ud800-replayable-after-restart' });
    const token = await processes.issuer().tokenFromText(JSON.stringify(claims));
    const first = await startService({ issuer: processes.issuer().url, dataDir, env: ENV });
    let firstStatus: number;
    try {
      firstStatus = (await exchangeToken(first.url, token)).status;
      expect(firstStatus, 'the token is granted once').toBe(200);
      expect((await exchangeToken(first.url, token)).status, 'a replay to the same process').not.toBe(200);
    } finally {
      await first.stop();
    }
    const restarted = await startService({ issuer: processes.issuer().url, dataDir, env: ENV });
    try {
      const again = await exchangeToken(restarted.url, token);
      expect([firstStatus, again.status], 'granted before and after the restart').not.toEqual([200, 200]);
    } finally {
      await restarted.stop();
    }
  }, 30_000);
});

describe('a lock file that is not one', () => {
  // Something else wrote the lock file (a pid file habit, a backup restore). The serve refuses, and says what the file
  // is and how to fix it.
  it('is refused and explained: what the file is and how to fix it', async () => {
    const dataDir = dir();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, LOCK_FILE), '12345\n');
    const refused = await serve(dataDir);
    expect(typeof refused).toBe('string');
    expect(refused).toContain(LOCK_FILE);
    expect(refused).toContain("It is deploy-sts's own: the serving process holds it");
    expect(refused, 'says how to fix it').toContain('If no deploy-sts serve is running on this data directory, remove the file and start again');
  }, 30_000);
});
