/**
 * A throw-away copy of this repository's sources (what a fresh clone holds: tracked files plus new files not yet
 * committed, never build/ or .data/), sharing this checkout's node_modules through a symlink. Tests that build,
 * pack or `npm start` work in such a copy, so they never rewrite the build/ the other suites are running from.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT, tempDir } from './service.js';

export function copySources(prefix = 'deploy-sts-clone-'): string {
  const dir = tempDir(prefix);
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  for (const file of listed.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** The environment for running npm and installed bins in tests: Node 24 (this process's) first on PATH, and none
 *  of the npm_* variables of the `npm test` run around us (they would redirect the prefix, cache or scripts). */
export function node24Env(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^npm_/i.test(key) && !key.startsWith('DEPLOY_STS_') && key !== 'INIT_CWD') env[key] = value;
  }
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  return { ...env, ...extra };
}
