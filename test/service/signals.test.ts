/**
 * Stopping and reloading the service however it was started, with real processes: `npm start`, `npm run deploy-sts
 * -- serve` and the `deploy-sts` launcher. SIGTERM to what the user started (npm included) stops the service;
 * the PID printed at start-up and written to the PID file is the serving process, and the reload command of docs/operating.md
 * run as written reloads it. Each runs in a fresh copy of the sources, so `npm start`'s build touches no one else.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySources, node24Env } from '../helpers/clone.js';
import { ROOT, tempDir } from '../helpers/service.js';
import { alive, run, serveWith, until, type Serving } from '../install/support.js';

/** The reload commands of docs/operating.md's "Policy reloads" section, one per line. */
function readmeReloadCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');
  const block = /<!-- reload:start -->\s*```sh\n([\s\S]*?)```\s*<!-- reload:end -->/.exec(readme);
  if (!block) throw new Error('docs/operating.md has no reload block');
  return block[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
}

let source: string;
const work = tempDir('deploy-sts-signals-');

beforeAll(async () => {
  source = copySources();
  const built = await run('npm', ['run', 'build'], { cwd: source, env: node24Env(), timeout: 120_000 });
  if (built.code !== 0) throw new Error(`build failed: ${built.stderr}`);
}, 180_000);
afterAll(() => {
  if (source) rmSync(source, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

function printedPid(service: Serving): number {
  const match = /\bpid\s+(\d+)/.exec(service.stderr());
  if (!match) throw new Error(`no pid line in:\n${service.stderr()}`);
  return Number(match[1]);
}

/** Run one documented reload command as written, then wait for the service to log both reloads. */
async function reloadAsReadmeSays(command: string, service: Serving, cwd: string): Promise<void> {
  const ran = await run('bash', ['-euo', 'pipefail', '-c', command], { cwd, env: node24Env() });
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  await until(() => service.stdout().includes('"event":"policy_reload"') && service.stdout().includes('"event":"keys_reload"'), 'the policy and key reload log lines');
}

/** SIGTERM what the user started; the serving process must go, its port close and its PID file disappear. */
async function stopAndCheck(service: Serving, pid: number, pidFile: string): Promise<void> {
  service.child.kill('SIGTERM');
  await service.exited;
  try {
    await until(() => !alive(pid), `process ${pid} to exit`);
  } catch (error) {
    process.kill(pid, 'SIGKILL'); // leave no service behind when this fails
    throw error;
  }
  await expect(fetch(`${service.url}/healthz`)).rejects.toThrow();
  expect(existsSync(pidFile)).toBe(false);
  expect(service.stdout()).toContain('"event":"shutdown"');
}

// npm starts npm (and `npm start` builds first): generous bounds for a loaded machine.
describe('npm start', { timeout: 120_000 }, () => {
  it('prints the PID of the serving process, reloads with the documented command, and stops on SIGTERM to npm', async () => {
    const [devCommand] = readmeReloadCommands();
    expect(devCommand).toBe('kill -HUP "$(cat .data/deploy-sts.pid)"');
    const service = await serveWith('npm', ['start', '--', '--port', '0'], { cwd: source, env: node24Env(), timeout: 90_000 });
    const pid = printedPid(service);
    try {
      expect(pid).not.toBe(service.child.pid);
      expect(readFileSync(join(source, '.data', 'deploy-sts.pid'), 'utf8')).toBe(`${pid}\n`);
      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
      await reloadAsReadmeSays(devCommand!, service, source);
      expect(alive(pid)).toBe(true);
    } finally {
      await stopAndCheck(service, pid, join(source, '.data', 'deploy-sts.pid'));
    }
  });
});

describe('npm run deploy-sts -- serve --pid-file', { timeout: 120_000 }, () => {
  it('writes the PID file, reloads with the documented command, and stops on SIGTERM to npm', async () => {
    const pidCommand = readmeReloadCommands().find((c) => c.includes('/run/deploy-sts/deploy-sts.pid'));
    expect(pidCommand).toBe('kill -HUP "$(cat /run/deploy-sts/deploy-sts.pid)"');
    const pidFile = join(work, 'run', 'deploy-sts.pid');
    const service = await serveWith('npm', ['run', 'deploy-sts', '--', 'serve', '--dev-defaults', '--port', '0', '--pid-file', pidFile], {
      cwd: source,
      env: node24Env({ DEPLOY_STS_DATA_DIR: join(work, 'data-npm-run') }),
      timeout: 60_000,
    });
    const pid = printedPid(service);
    try {
      expect(pid).not.toBe(service.child.pid);
      expect(readFileSync(pidFile, 'utf8')).toBe(`${pid}\n`);
      await reloadAsReadmeSays(pidCommand!.replace('/run/deploy-sts/deploy-sts.pid', pidFile), service, work);
    } finally {
      await stopAndCheck(service, pid, pidFile);
    }
  });
});

describe('deploy-sts serve (the launcher, as installed)', () => {
  it('is itself the serving process: the printed PID, reloaded by SIGHUP, stopped by SIGTERM', async () => {
    const pidFile = join(work, 'direct.pid');
    const service = await serveWith(process.execPath, [join(source, 'bin', 'deploy-sts.js'), 'serve', '--dev-defaults', '--port', '0', '--pid-file', pidFile], {
      cwd: work,
      env: node24Env({ DEPLOY_STS_DATA_DIR: join(work, 'data-direct') }),
    });
    const pid = printedPid(service);
    try {
      expect(pid).toBe(service.child.pid);
      expect(service.stderr()).toContain(`reload policies and keys with: kill -HUP "$(cat ${pidFile})"`);
      await reloadAsReadmeSays(`kill -HUP "$(cat ${pidFile})"`, service, work);
    } finally {
      await stopAndCheck(service, pid, pidFile);
    }
  });
});
