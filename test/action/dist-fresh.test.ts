/**
 * dist/ is committed (GitHub runs it as is), so it must be exactly the bundle of the current source. This
 * rebuilds it into a temp dir with the same command as `npm run bundle` and compares byte for byte.
 *
 * ncc names modules by their path relative to the working directory, so the bundle is made from build/action/
 * (what `npm run build` writes, and `npm test` runs that first); the test first checks that build/ is current.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(root, 'node_modules/typescript/bin/tsc');
const NCC = join(root, 'node_modules/@vercel/ncc/dist/ncc/cli.js');
const BUNDLES = ['main', 'post'] as const;
/** The part of the spec's budget for dist/: main + post bundles with their licence files. */
const MAX_DIST_BYTES = 1.5 * 1024 * 1024;

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Files missing, extra (unless allowed) or different in `actualDir`. */
async function differingFiles(expectedDir: string, actualDir: string, allowExtra = false): Promise<string[]> {
  const expected = await listFiles(expectedDir);
  const actual = await listFiles(actualDir).catch(() => [] as string[]);
  const differing = [...new Set([...expected, ...actual])].filter((f) => !actual.includes(f) || (!allowExtra && !expected.includes(f)));
  for (const file of expected.filter((f) => actual.includes(f))) {
    const [a, b] = await Promise.all([readFile(join(expectedDir, file)), readFile(join(actualDir, file))]);
    if (!a.equals(b)) differing.push(file);
  }
  return differing.sort();
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'deploy-sts-dist-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the committed bundle', () => {
  it('is built from the current build/ (run `npm run build` first; `npm test` does)', async () => {
    const out = join(tmp, 'tsc');
    // Other parts of the tree may not type-check mid-change; tsc still emits, and only action/ matters here.
    await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--outDir', out], { cwd: root }).catch(() => undefined);
    const stale = await differingFiles(join(out, 'action'), join(root, 'build/action'), true);
    expect(stale, `build/action is stale (${stale.join(', ')}): run \`npm run build\``).toEqual([]);
  }, 120_000);

  it('is byte for byte what `npm run bundle` makes of the source', async () => {
    for (const bundle of BUNDLES) {
      const out = join(tmp, 'dist', bundle);
      await run(process.execPath, [NCC, 'build', `build/action/${bundle}.js`, '-o', out, '-m', '-C', '-q', '--license', 'licenses.txt'], { cwd: root });
      const stale = await differingFiles(out, join(root, 'dist', bundle));
      expect(stale, `dist/${bundle} differs from a fresh bundle (${stale.join(', ')}): run \`npm run bundle\` and commit dist/`).toEqual([]);
    }
  }, 180_000);

  it('fits the size budget', async () => {
    let total = 0;
    for (const file of await listFiles(join(root, 'dist'))) total += (await readFile(join(root, 'dist', file))).length;
    expect(total).toBeLessThanOrEqual(MAX_DIST_BYTES);
  });
});
