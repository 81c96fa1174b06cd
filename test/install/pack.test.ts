/**
 * The package as a user gets it: `npm pack` (which builds, through `prepack`) of a fresh copy of the sources, then
 * `npm install -g` of the tarball into a temporary prefix, then the installed `deploy-sts` run from an unrelated
 * directory with Node 24 — no clone, no build/ of ours, no working directory to lean on.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySources, node24Env } from '../helpers/clone.js';
import { ROOT, tempDir } from '../helpers/service.js';
import { run, serveWith } from './support.js';

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = tempDir('deploy-sts-pack-');
const prefix = join(work, 'prefix');
const elsewhere = join(work, 'elsewhere');
let source: string;
let tarball: string;
let installed: string;
let beforeBuild: Awaited<ReturnType<typeof run>>;
const env = node24Env();

beforeAll(async () => {
  source = copySources();
  beforeBuild = await run('npm', ['run', 'deploy-sts', '--', 'policy', 'check', 'examples/policies'], { cwd: source, env, timeout: 60_000 });
  const packed = await run('npm', ['pack', '--pack-destination', work, '--json'], { cwd: source, env, timeout: 120_000 });
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
  tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  const started = Date.now();
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: work, env, timeout: 180_000 });
  if (install.code !== 0) throw new Error(`npm install -g failed:\n${install.stderr}`);
  console.info(`packed install took ${Date.now() - started} ms`);
  installed = join(prefix, 'bin', 'deploy-sts');
  rmSync(elsewhere, { recursive: true, force: true });
  await run('mkdir', ['-p', elsewhere], { cwd: work, env });
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  if (source) rmSync(source, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('ships only what runs: the launcher, the built service, the schema, the example policies and the docs', async () => {
    const listed = await run('tar', ['-tzf', tarball], { cwd: work, env });
    const files = listed.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toContain('bin/deploy-sts.js');
    expect(files).toContain('build/exchange-service/cli.js');
    expect(files).toContain('schema/policy.schema.json');
    expect(files).toContain('examples/policies/docs.yml');
    // The README links into docs/: the npm page and an installed copy must not have broken links.
    expect(files).toContain('docs/operating.md');
    expect(files).toContain('LICENSE');
    const allowed = /^(bin\/|build\/exchange-service\/|build\/shared\/|schema\/|examples\/policies\/|docs\/[\w-]+\.md$|README\.md$|SECURITY\.md$|LICENSE$|package\.json$)/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files.some((f) => f.startsWith('build/action/') || f.startsWith('test/') || f.startsWith('dist/'))).toBe(false);
  });

  it('installs a deploy-sts that reports its version', async () => {
    const r = await run(installed, ['--version'], { cwd: elsewhere, env });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(version);
    expect(r.code).toBe(0);
  });

  it('checks policies from another directory', async () => {
    const examples = join(prefix, 'lib', 'node_modules', 'deploy-sts', 'examples', 'policies');
    const r = await run(installed, ['policy', 'check', examples], { cwd: elsewhere, env });
    expect(r.stdout).toMatch(/^ok: /);
    expect(r.code).toBe(0);
  });

  it('serves with the embedded defaults until ready, from a directory with no policies of its own, and stops on SIGTERM', async () => {
    const dataDir = join(work, 'data');
    const service = await serveWith(installed, ['serve', '--dev-defaults', '--port', '0'], { cwd: elsewhere, env: { ...env, DEPLOY_STS_DATA_DIR: dataDir } });
    try {
      expect(service.stderr()).toContain(join('deploy-sts', 'examples', 'policies'));
      const ready = await fetch(`${service.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(existsSync(join(dataDir, 'deploy-sts.pid'))).toBe(true);
    } finally {
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dataDir, 'deploy-sts.pid'))).toBe(false);
    expect(readdirSync(elsewhere)).toEqual([]);
  });
});

describe('a clone before any build', () => {
  it('`npm run deploy-sts` says to run npm run build, without a stack trace', () => {
    expect(beforeBuild.code).toBe(1);
    expect(beforeBuild.stderr).toContain('deploy-sts: the CLI is not built yet (no build/exchange-service/cli.js): run `npm run build` in this clone, then try again');
    expect(beforeBuild.stderr).not.toMatch(/^\s+at /m);
    expect(beforeBuild.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
  });
});
