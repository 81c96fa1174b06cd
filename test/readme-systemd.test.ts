/**
 * docs/operating.md's systemd unit: systemd itself finds nothing to complain about (`systemd-analyze verify`, when this machine
 * has it), and the service runs as the unit runs it — its ExecStart arguments and Environment= lines — reloads on
 * the unit's ExecReload signal and stops cleanly on its KillSignal. Only paths change: the launcher of this checkout
 * for /opt/node-v24/bin/deploy-sts, temp dirs for /var/lib, /etc and /run, and port 0.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { node24Env } from './helpers/clone.js';
import { EXAMPLE_POLICIES, ROOT, tempDir } from './helpers/service.js';
import { serveWith, until } from './install/support.js';

const INSTALLED = '/opt/node-v24/bin/deploy-sts';
const work = tempDir('deploy-sts-systemd-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

function unitText(): string {
  const readme = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');
  const block = /<!-- systemd-unit -->\s*```ini\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('docs/operating.md has no systemd unit block');
  return block[1]!;
}

/** `Key=value` lines of the [Service] section, in order (a key may repeat). */
function serviceEntries(unit: string): [string, string][] {
  const section = unit.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  return section
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]);
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('the systemd unit in docs/operating.md', () => {
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify without a warning', () => {
    const file = join(work, 'deploy-sts.service');
    writeFileSync(file, unitText().replace(INSTALLED, join(ROOT, 'bin', 'deploy-sts.js')));
    const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr.split('\n').filter((l) => l.includes('deploy-sts.service'))).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('runs the service as ExecStart does, reloads on ExecReload and stops on KillSignal', async () => {
    const entries = serviceEntries(unitText());
    const get = (key: string) => entries.filter(([k]) => k === key).map(([, v]) => v);
    expect(get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(get('KillSignal')).toEqual(['SIGTERM']);
    const [binary, ...args] = get('ExecStart')[0]!.split(' ');
    expect(binary).toBe(INSTALLED);
    const pidFile = join(work, 'run', 'deploy-sts.pid');
    const env: Record<string, string> = {};
    for (const assignment of get('Environment')) {
      const [name, value] = [assignment.slice(0, assignment.indexOf('=')), assignment.slice(assignment.indexOf('=') + 1)];
      env[name] = value;
    }
    expect(env).toMatchObject({ DEPLOY_STS_DATA_DIR: '/var/lib/deploy-sts', DEPLOY_STS_POLICIES: '/etc/deploy-sts/policies' });
    // docs/operating.md's EnvironmentFile holds the public URL.
    expect(readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8')).toContain("printf 'DEPLOY_STS_PUBLIC_URL=https://sts.example.com\\n' | sudo tee /etc/deploy-sts/env");
    const service = await serveWith(process.execPath, [join(ROOT, 'bin', 'deploy-sts.js'), ...args.map((a) => a.replace('/run/deploy-sts/deploy-sts.pid', pidFile))], {
      cwd: work,
      env: node24Env({
        DEPLOY_STS_DATA_DIR: join(work, 'var-lib'),
        DEPLOY_STS_POLICIES: EXAMPLE_POLICIES,
        DEPLOY_STS_PUBLIC_URL: 'https://sts.example.com',
        DEPLOY_STS_PORT: '0',
      }),
    });
    try {
      const mainPid = service.child.pid!;
      expect(readFileSync(pidFile, 'utf8')).toBe(`${mainPid}\n`);
      execFileSync('/bin/sh', ['-c', get('ExecReload')[0]!.replace('$MAINPID', String(mainPid))]);
      await until(() => service.stdout().includes('"event":"policy_reload"'), 'the policy reload');
    } finally {
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
  });
});
