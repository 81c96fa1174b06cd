/**
 * On a Node.js older than 24 (no node:sqlite), every verb exits 1 with one line — the version found, the version
 * needed, how to get it — and never a stack trace. Run with a real older Node from this machine (the system one);
 * skipped, saying so, where none exists.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/service.js';
import { run } from './support.js';

/** The first `node` on PATH (or in the usual places) whose major version is below 24, outside node_modules. */
function findOldNode(): { path: string; version: string } | undefined {
  const candidates = [...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'node')), '/usr/bin/node', '/usr/local/bin/node', '/bin/node'];
  for (const path of candidates) {
    if (path.includes('node_modules') || !existsSync(path)) continue;
    try {
      const version = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
      if (Number(/^v(\d+)/.exec(version)?.[1] ?? 99) < 24) return { path, version };
    } catch {
      // not runnable: try the next one
    }
  }
  return undefined;
}

const old = findOldNode();
const VERBS: string[][] = [
  ['serve', '--dev-defaults', '--port', '0'],
  ['policy', 'check', 'examples/policies'],
  ['policy', 'explain', '--site', 'docs', '--token', 'x.jwt'],
  ['tokens', 'list'],
  ['tokens', 'revoke', 'abc'],
  ['audit'],
  ['keys', 'rotate'],
  ['dev', 'token'],
  ['credentials', 'list'],
  ['workflows', 'check'],
  ['--version'],
  ['--help'],
  [],
];

if (!old) console.warn('old-node.test.ts: skipped — no Node.js older than 24 on this machine (PATH, /usr/bin, /usr/local/bin) to run the CLI with');

describe.skipIf(!old)(`deploy-sts on an older Node.js (${old?.version ?? 'none found'} at ${old?.path ?? '-'})`, () => {
  const dataDir = tempDir('deploy-sts-old-node-');
  const launcher = join(ROOT, 'bin', 'deploy-sts.js');
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const needed = /^>=(\d+)/.exec((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)![1];

  for (const args of VERBS) {
    it(`\`deploy-sts ${args.join(' ')}\` exits 1 with one line naming the version found, the version needed and how to get it`, async () => {
      const r = await run(old!.path, [launcher, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DEPLOY_STS_DATA_DIR: dataDir } });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(old!.version);
      expect(lines[0]).toContain(`Node.js ${needed} or newer`);
      expect(lines[0]).toContain('https://nodejs.org/');
      expect(r.stderr).not.toMatch(/ERR_|node:sqlite|^\s+at /m);
    });
  }

  it('never touched the data directory', () => {
    expect(existsSync(join(dataDir, 'deploy-sts.sqlite'))).toBe(false);
  });
});
