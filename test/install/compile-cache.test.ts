/**
 * The `deploy-sts` command keeps V8's compile cache (its modules' bytecode) between runs, for a faster start — in a
 * directory only this user can write, never in one another user could have prepared: a planted cache entry would be
 * code the command runs. A cache it cannot use changes nothing but the speed.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/service.js';
import { run } from './support.js';

const launcher = join(ROOT, 'bin', 'deploy-sts.js');
const work = tempDir('deploy-sts-compile-cache-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const uid = process.getuid?.();
const isRoot = uid === 0;
/** Every file under a directory, recursively. */
const filesIn = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);

/** `deploy-sts --version` with TMPDIR set to a directory of the test's own. */
async function version(tmp: string, env: Record<string, string> = {}) {
  mkdirSync(tmp, { recursive: true });
  const r = await run(process.execPath, [launcher, '--version'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', TMPDIR: tmp, ...env } });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  expect(r.code).toBe(0);
  return r;
}

if (!isRoot) console.warn('compile-cache.test.ts: the case of a cache directory owned by another user is skipped — it needs root to create one');

describe.skipIf(uid === undefined)('the compile cache of the deploy-sts command', () => {
  it('lives in TMPDIR/deploy-sts-compile-cache-UID, created readable and writable by this user alone, and is filled by the first run', async () => {
    const tmp = join(work, 'fresh');
    await version(tmp);
    const dir = join(tmp, `deploy-sts-compile-cache-${uid}`);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(filesIn(dir).length).toBeGreaterThan(0);
    await version(tmp); // and the second run reads it
  });

  it('is not used when other users may write to that directory', async () => {
    const tmp = join(work, 'shared');
    const dir = join(tmp, `deploy-sts-compile-cache-${uid}`);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    await version(tmp);
    expect(filesIn(dir)).toEqual([]);
  });

  it.skipIf(!isRoot)('is not used when another user owns that directory', async () => {
    const tmp = join(work, 'planted');
    const dir = join(tmp, `deploy-sts-compile-cache-${uid}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, 65534, 65534);
    await version(tmp);
    expect(filesIn(dir)).toEqual([]);
  });

  it('is not used, nor its directory created, with NODE_DISABLE_COMPILE_CACHE=1', async () => {
    const tmp = join(work, 'disabled');
    await version(tmp, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(existsSync(join(tmp, `deploy-sts-compile-cache-${uid}`))).toBe(false);
  });

  it('goes where NODE_COMPILE_CACHE says', async () => {
    const tmp = join(work, 'elsewhere');
    const chosen = join(work, 'chosen-cache');
    await version(tmp, { NODE_COMPILE_CACHE: chosen });
    expect(existsSync(join(tmp, `deploy-sts-compile-cache-${uid}`))).toBe(false);
    expect(filesIn(chosen).length).toBeGreaterThan(0);
  });
});
