/**
 * The service's log on standard output (service.ts `createLogger`): each turn's lines are kept and written together.
 * A real process logs, into a file and into a pipe, more lines in one turn than the buffer holds, lines in later
 * turns, and lines right before `process.exit`; every line must arrive once, whole, in order.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/service.js';

const work = tempDir('deploy-sts-log-output-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Lines 0..2999 in one turn, 3000..3099 one per turn, 3100..3109 in the turn that calls process.exit. */
const SCRIPT = `
const { createLogger } = await import(${JSON.stringify(join(ROOT, 'build', 'exchange-service', 'service.js'))});
const logger = createLogger('info');
const padding = 'x'.repeat(200);
for (let n = 0; n < 3000; n++) logger.info({ n, padding }, 'line');
for (let n = 3000; n < 3100; n++) await new Promise((resolve) => setImmediate(() => resolve(logger.info({ n, padding }, 'line'))));
for (let n = 3100; n < 3110; n++) logger.info({ n, padding }, 'line');
process.exit(0);
`;

function runLogger(stdout: 'pipe' | number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['ignore', stdout, 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the logging process exited with ${code}: ${err}`));
      else resolve({ code, out });
    });
  });
}

function expectEveryLineOnceInOrder(out: string): void {
  const lines = out.split('\n');
  expect(lines.pop()).toBe('');
  const numbers = lines.map((line) => (JSON.parse(line) as { n: number; msg: string }).n);
  expect(numbers).toEqual(Array.from({ length: 3110 }, (_, i) => i));
}

describe('the log on standard output', () => {
  it('writes every line once, whole and in order, into a file', async () => {
    const file = join(work, 'log.ndjson');
    const fd = openSync(file, 'w');
    try {
      await runLogger(fd);
    } finally {
      closeSync(fd);
    }
    expectEveryLineOnceInOrder(readFileSync(file, 'utf8'));
  });

  it('writes every line once, whole and in order, into a pipe', async () => {
    const { out } = await runLogger('pipe');
    expectEveryLineOnceInOrder(out);
  });
});
