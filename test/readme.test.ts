/**
 * The walk-through in docs/http-api.md, run as written: the block between the walkthrough markers is executed by bash against
 * a real `deploy-sts serve --dev-defaults` (the only change: the STS= line points at the port this test got).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/service.js';

const run = promisify(execFile);
const dataDir = tempDir();
let child: ReturnType<typeof spawn>;
let url: string;

function walkthrough(): string {
  const readme = readFileSync(join(ROOT, 'docs', 'http-api.md'), 'utf8');
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  if (!block) throw new Error('docs/http-api.md has no walkthrough block');
  return block[1]!;
}

beforeAll(async () => {
  child = spawn(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), 'serve', '--dev-defaults', '--port', '0'], {
    cwd: ROOT,
    env: { ...process.env, DEPLOY_STS_DATA_DIR: dataDir, DEPLOY_STS_METRICS_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
});
afterAll(() => {
  child?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the walk-through in docs/http-api.md', () => {
  it('works exactly as written', async () => {
    const script = walkthrough();
    expect(script).toContain('STS=http://127.0.0.1:8080');
    const { stdout } = await run('bash', ['-u', '-c', script.replace('STS=http://127.0.0.1:8080', `STS=${url}`)], {
      cwd: ROOT,
      env: { ...process.env, DEPLOY_STS_DATA_DIR: dataDir },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/"context":"production"/);
    expect(stdout).toMatch(/already exchanged/);
    expect(stdout).toMatch(/"context":"preview","rule":"previews"/);
    expect(stdout).toMatch(/rule \\"production\\": ref \\"refs\/heads\/feature\\"/);
    expect(stdout).toMatch(/"active":true[\s\S]*"active":false/);
    expect(stdout).toMatch(/result: DENIED/);
  }, 90_000); // the script may take its 60 s under a loaded machine (four CLI runs)
});
