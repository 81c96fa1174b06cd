/**
 * Attacks on the serving lock's watch (storage/data-dir-lock.ts): what the serving process does when its
 * lock file's name comes back to a file it already holds, when a clean-up deletes the lock file now and then over a long
 * life, and what it tells the operator. The operator is unlucky, not malicious. The other side of the invariant matters
 * as much: a healthy service must never stop exchanging because of what the lock saw (that is an outage).
 */
import { renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { DATABASE_FILE, useServingProcesses } from './serving-lock-support.js';
import { LOCK_CHECK_MS, LOCK_FILE } from '../../exchange-service/storage/data-dir-lock.js';
import { exchangeToken, type SpawnedService } from '../helpers/service.js';

const processes = useServingProcesses('deploy-sts-watch-');
const { dir, serving } = processes;

const settle = () => new Promise((r) => setTimeout(r, 2 * LOCK_CHECK_MS));
const grants = async (s: SpawnedService) => (await exchangeToken(s.url, await processes.issuer().token())).status;


describe('the lock file moved aside and put back', () => {
  // `mv deploy-sts.sqlite.lock{,.bak}` then, told not to touch it, `mv deploy-sts.sqlite.lock{.bak,}`. The service
  // re-locked a new file at the name in between; the name now leads back to the first lock file, which this process
  // still holds (it keeps every lock). Its re-lock opens a second connection on that file, which SQLite refuses inside
  // one process (SQLITE_BUSY), and the service stops, blaming "another deploy-sts serve". No other process is involved.
  it('goes on exchanging: the name leads to a lock this process holds', async () => {
    const s = await serving(dir());
    const lock = join(s.dataDir, LOCK_FILE);
    renameSync(lock, `${lock}.bak`);
    await settle(); // the watch fires: a new lock file is taken at the name
    renameSync(`${lock}.bak`, lock);
    await settle();
    const status = await grants(s);
    await settle();
    expect(s.stdout.join(''), 'no other process is involved').not.toContain('another deploy-sts serve holds it');
    expect(status).toBe(200);
  }, 60_000);
});

describe('a lock file deleted now and then over the service\'s life', () => {
  // A daily clean-up (tmpfiles' age rule, a cron `find -delete` on old files: nothing ever writes the lock file, so it
  // always looks old) deletes it once a day. The service re-locks each time, says so, and lets go of the deleted file
  // (no name leads to it), so it goes on for as many days as it takes the operator to find the clean-up.
  it('is reported the first time, so the clean-up is found before it costs anything', async () => {
    const s = await serving(dir());
    rmSync(join(s.dataDir, LOCK_FILE));
    await settle();
    expect(await grants(s)).toBe(200);
    // A warn line naming the lock file (as the checkpoint thread's `storage_warning` does).
    const lines = s.stdout.join('').split('\n').filter((l) => l.includes(LOCK_FILE));
    expect(lines, 'the re-lock is silent').not.toEqual([]);
  }, 60_000);

  it('does not stop a healthy service: a deleted lock file no name leads to is no longer needed', async () => {
    const s = await serving(dir());
    const lock = join(s.dataDir, LOCK_FILE);
    for (let day = 1; day <= 9; day++) {
      rmSync(lock);
      await settle();
      expect(statSync(lock).isFile(), `re-locked on day ${day}`).toBe(true);
    }
    expect(await grants(s), s.stdout.join('').slice(-600)).toBe(200);
  }, 60_000);
});

describe('the database moved away and put back', () => {
  // The service stops for good once it notices (right: it cannot know what was served meanwhile); putting the file back
  // changes nothing until a restart, and the message says so.
  it('says that a restart is needed once it has stopped', async () => {
    const s = await serving(dir());
    const db = join(s.dataDir, DATABASE_FILE);
    renameSync(db, `${db}.moved`);
    await settle();
    renameSync(`${db}.moved`, db);
    await settle();
    expect(await grants(s)).toBe(503);
    await settle(); // the log line is written at the end of the answer's turn
    const said = s.stdout.join('');
    expect(said).toContain('was moved, replaced or re-linked');
    expect(said).toMatch(/restart/i);
  }, 60_000);
});

describe('SQLite maintenance on the served database', () => {
  // Does SQLite ever give the database file a new inode (VACUUM rewrites the file; a WAL checkpoint truncates the
  // WAL)? If it did, the name check would stop a healthy service. VACUUM needs the write lock only.
  it('VACUUM from a lock-less connection leaves the service exchanging', async () => {
    const s = await serving(dir());
    expect(await grants(s)).toBe(200);
    const db = new DatabaseSync(join(s.dataDir, DATABASE_FILE));
    try {
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec('VACUUM');
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
    await settle();
    expect(await grants(s)).toBe(200);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
  }, 60_000);
});
