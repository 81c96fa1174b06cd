/**
 * Attacks on "one service per SQLite data directory" by moving files under a serving process (storage/data-dir-lock.ts):
 * names change, the file a process serves does not. The serving process watches its lock file and checks every
 * LOCK_CHECK_MS that the database's name still leads to the file it opened; it keeps every lock it has held until it
 * stops. The invariant: a GitHub OIDC token (issuer, jti, exp) is exchanged at most once, with no second process
 * exchanging from the same SQLite database however the operator arranges its files. The operator is unlucky, not
 * malicious.
 */
import { linkSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATABASE_FILE, useServingProcesses } from './serving-lock-support.js';
import { LOCK_CHECK_MS, LOCK_FILE } from '../../exchange-service/storage/data-dir-lock.js';
import { cli } from '../helpers/cli.js';
import { exchangeToken, postForm, type SpawnedService } from '../helpers/service.js';

const processes = useServingProcesses('deploy-sts-relock-');
const { dir, serve, serving, grantsAcross, refusedBeside } = processes;

/** The first process, once it has noticed (within LOCK_CHECK_MS), refuses every exchange. */
async function refusesExchanges(first: SpawnedService): Promise<void> {
  await new Promise((r) => setTimeout(r, 2 * LOCK_CHECK_MS));
  const answer = await exchangeToken(first.url, await processes.issuer().token());
  expect(answer.status).toBe(503);
  expect(answer.body).not.toHaveProperty('access_token');
  expect((await fetch(`${first.url}/readyz`)).status).toBe(503);
}

describe('the database moved with its lock file while serving', () => {
  // The process keeps every lock it has held: whatever name now leads to the old lock file's inode is still locked.
  it('to another directory: a serve there is refused, and the first stops exchanging', async () => {
    const a = dir();
    const b = dir();
    const first = await serving(a);
    // "Move the database to the new volume, then start the service there": the files move, the process keeps them open.
    for (const name of readdirSync(a).filter((n) => n.startsWith(DATABASE_FILE))) renameSync(join(a, name), join(b, name));
    await refusedBeside(first, b);
    await refusesExchanges(first);
  }, 60_000);

  it('with its whole data directory, renamed and created again: a serve on the renamed directory is refused', async () => {
    const parent = dir();
    const a = join(parent, 'data');
    const moved = join(parent, 'data-moved');
    mkdirSync(a);
    const first = await serving(a);
    renameSync(a, moved);
    mkdirSync(a); // a provisioning tool, systemd's StateDirectory=, or `mkdir -p` in a wrapper script
    await refusedBeside(first, moved);
    await refusesExchanges(first);
  }, 60_000);
});

describe('the database file renamed while serving, its lock file left where it was', () => {
  // The lock is found by the database's name, the database is served by its inode: after a rename (a move of "the data
  // files" that leaves a `.lock` behind as pid-file habits teach, or `ln` then `rm`), nothing ties the new name to the
  // held lock, so the serving process checks that its database is still the file the name leads to, and stops.
  it('stops the first from exchanging, so the file is never served twice', async () => {
    const a = dir();
    const b = dir();
    const first = await serving(a);
    for (const name of readdirSync(a).filter((n) => n.startsWith(DATABASE_FILE) && n !== LOCK_FILE)) renameSync(join(a, name), join(b, name));
    const second = await serving(b);
    expect(await grantsAcross(first, second), 'one token, two processes on one database file').toEqual([503, 200]);
    expect(first.stdout.join('')).toContain(`${join(a, DATABASE_FILE)} no longer leads to the file it opened`);
  }, 60_000);
});

describe('the database symbolic link pointed elsewhere while serving', () => {
  // A restore done by re-pointing the link (`ln -sfn /restore/deploy-sts.sqlite DATA_DIR/deploy-sts.sqlite`): the
  // data directory now names another database, whose lock is free; the first process goes on serving the old one
  // unless it checks the name: it stops, so no two serves of one data directory each keep their own spent jtis.
  it('does not leave two processes granting one token from one data directory', async () => {
    const a = dir();
    const x = dir();
    const y = dir();
    symlinkSync(join(x, DATABASE_FILE), join(a, DATABASE_FILE));
    // The link must lead somewhere at start (a link to nothing is refused): an empty file SQLite takes as a new database.
    writeFileSync(join(x, DATABASE_FILE), '');
    const first = await serving(a);
    writeFileSync(join(y, DATABASE_FILE), '');
    rmSync(join(a, DATABASE_FILE));
    symlinkSync(join(y, DATABASE_FILE), join(a, DATABASE_FILE));
    const second = await serving(a);
    expect(await grantsAcross(first, second), 'one token, two processes serving one data directory').toEqual([503, 200]);
  }, 60_000);
});

describe('a verb without the lock, through a second hard link to the served database', () => {
  // By the other name, `tokens revoke` would write into another write-ahead log, which the serving process never reads
  // (docs/operating.md promises "a revocation made by the CLI holds at the service's /introspect at once"): every
  // verb refuses a hard-linked database, as serve does.
  it('is refused, saying why, and nothing is revoked behind the service\'s back', async () => {
    const a = dir();
    const b = dir();
    const first = await serving(a);
    const granted = await exchangeToken(first.url, await processes.issuer().token());
    expect(granted.status).toBe(200);
    const token = String(granted.body.access_token);
    const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;
    linkSync(join(a, DATABASE_FILE), join(b, DATABASE_FILE));
    const revoked = await cli(['tokens', 'revoke', jti], { DEPLOY_STS_DATA_DIR: b });
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain(`the database file ${join(b, DATABASE_FILE)} has 2 hard links`);
    const seen = await postForm(`${first.url}/introspect`, { token }, { authorization: `Bearer ${token}` });
    expect(seen.body.active, 'nothing was revoked').toBe(true);
  }, 60_000);
});

describe('a lock file deleted, and a second serve started at once', () => {
  // The serving process watches its lock file: it locks the new file at the old name as soon as the old one is gone,
  // long before a second process can start and reach its lock. (A second process that locks the new file first — in
  // the moment before the watch fires — makes the first refuse every exchange: attack-data-dir-lock.test.ts.)
  it('is refused: the serving process got there first', async () => {
    const dataDir = dir();
    const first = await serving(dataDir);
    rmSync(join(dataDir, LOCK_FILE));
    const second = await serve(dataDir);
    expect(second).toEqual(expect.stringContaining('another deploy-sts serve'));
    expect((await exchangeToken(first.url, await processes.issuer().token())).status).toBe(200);
  }, 60_000);
});
