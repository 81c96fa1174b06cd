/**
 * Finishing the debugging of a denial: the Action (its committed dist/ bundle, run as the runner would) is denied by
 * the real service, and the `policy explain` command it prints is pasted, as is, into a shell where the service's
 * policies are — with `deploy-sts` the built CLI — and explains that very run rule by rule, without its token.
 */
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { EXAMPLE_POLICIES, ROOT, startService, tempDir, type TestService } from '../helpers/service.js';
import { run } from '../install/support.js';
import { oidcEnv, startJob, startRunnerTokenEndpoint, type Job, type RunnerTokenEndpoint, type StepResult } from './support/runner.js';

const AUDIENCE = 'https://127.0.0.1/deploy-sts';
let issuer: TestIssuer;
let service: TestService;
const work = tempDir('deploy-sts-explain-denial-');
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  issuer = await startIssuer();
  service = await startService({ issuer: issuer.url, audience: AUDIENCE });
  // `deploy-sts` on PATH is the launcher of this checkout, as an installed one would be.
  mkdirSync(join(work, 'bin'), { recursive: true });
  writeFileSync(join(work, 'bin', 'deploy-sts'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin', 'deploy-sts.js')}" "$@"\n`, { mode: 0o755 });
});
afterAll(async () => {
  await service?.stop();
  await issuer?.close();
  rmSync(work, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function deniedRun(claims: Record<string, unknown>, site = 'docs'): Promise<string> {
  const endpoint: RunnerTokenEndpoint = await startRunnerTokenEndpoint(issuer, claims);
  cleanups.push(() => endpoint.close());
  const j: Job = await startJob();
  cleanups.push(() => j.cleanup());
  const main: StepResult = await j.run('main', { inputs: { url: service.url, site }, env: oidcEnv(endpoint) });
  expect(main.exitCode).toBe(1);
  const line = main.stdout.split('\n').find((l) => l.startsWith('::error::')) ?? '';
  return line.slice('::error::'.length).replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%');
}

/** The printed command: the last line of the message, as a maintainer would copy it. */
function printedCommand(message: string): string {
  const command = message.split('\n').at(-1)!.trim();
  expect(command).toMatch(/\| deploy-sts policy explain --site \S+ --policies "\$\{DEPLOY_STS_POLICIES:-policies\}" --audience \S+ --claims -$/);
  return command;
}

function paste(command: string) {
  return run('bash', ['-c', command], {
    cwd: work,
    env: { PATH: `${join(work, 'bin')}:${process.env.PATH ?? ''}`, DEPLOY_STS_POLICIES: EXAMPLE_POLICIES, HOME: work },
  });
}

describe('the explain command the Action prints on a denial', () => {
  it('explains that run rule by rule, condition by condition, from the printed claims', async () => {
    const message = await deniedRun({ ref: 'refs/heads/feature' });
    const r = await paste(printedCommand(message));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('claims given as JSON (--claims)');
    expect(r.stdout).toContain('rule "production" (production, docs.yml): does not match');
    expect(r.stdout).toMatch(/✗ ref "refs\/heads\/feature" is not/);
    expect(r.stdout).toContain('result: DENIED (no_rule_matched)');
    expect(r.stdout).not.toContain('unavailable:');
    expect(r.code).toBe(1);
  });

  it('grants what the policy grants, so a fixed policy can be checked before it ships', async () => {
    const message = await deniedRun({ ref: 'refs/heads/feature' });
    const command = printedCommand(message).replace('refs/heads/feature', 'refs/heads/main');
    const r = await paste(command);
    expect(r.stdout).toContain('result: GRANTED by rule "production"');
    expect(r.code).toBe(0);
  });

  it('is safe to paste whatever the branch is called', async () => {
    const marker = join(work, 'pwned');
    const message = await deniedRun({ ref: `refs/heads/x'$(touch ${marker})'` });
    const r = await paste(printedCommand(message));
    expect(r.stdout).toContain(`ref "refs/heads/x'$(touch ${marker})'" is not`);
    expect(existsSync(marker)).toBe(false);
  });

  it('is replaced, for a site the service does not know, by a fix pointing at the site input', async () => {
    const message = await deniedRun({}, 'doc');
    expect(message).toMatch(/^Fix: Check the `site` input: the service has no policy for a site "doc"/m);
  });
});
