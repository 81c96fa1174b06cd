/**
 * End to end: the committed dist/ bundles (main, then post) run as child processes under Node 24 with the
 * environment a runner gives, against the real exchange service on 127.0.0.1 and a loopback stand-in for the
 * runner's OIDC token endpoint that signs with the test issuer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { postForm, startService, type TestService } from '../helpers/service.js';
import { startFlakyProxy } from './support/flaky-proxy.js';
import { closedPort } from './support/loopback.js';
import { assertNodeForBundles, oidcEnv, startJob, startRunnerTokenEndpoint, stateEnv, type Job, type RunnerTokenEndpoint, type StepResult } from './support/runner.js';

/**
 * The audience the service expects and advertises. The Action uses an advertised audience only on the service's
 * own host, so it names 127.0.0.1 (the default test audience, https://deploy-sts.test, would be ignored).
 */
const AUDIENCE = 'https://127.0.0.1/deploy-sts';

let issuer: TestIssuer;
let service: TestService;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  issuer = await startIssuer();
  service = await startService({ issuer: issuer.url, audience: AUDIENCE });
});
afterAll(async () => {
  await service?.stop();
  await issuer?.close();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function job(): Promise<Job> {
  const j = await startJob();
  cleanups.push(() => j.cleanup());
  return j;
}

async function runnerEndpoint(claims: Record<string, unknown> = {}): Promise<RunnerTokenEndpoint> {
  const endpoint = await startRunnerTokenEndpoint(issuer, claims);
  cleanups.push(() => endpoint.close());
  return endpoint;
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const { status, body } = await postForm(`${service.url}/introspect`, { token }, { authorization: `Bearer ${token}` });
  expect(status).toBe(200);
  return body;
}

/** The `::error::` message of a failed step, unescaped. */
function failureMessage(step: StepResult): string {
  const line = step.stdout.split('\n').find((l) => l.startsWith('::error::')) ?? '';
  return line.slice('::error::'.length).replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%');
}

/** The token was registered with the masker (first write of all that contains it) and then never printed. */
function expectMaskedFirst(step: StepResult, token: string): void {
  const first = step.trace.find((e) => e.text.includes(token));
  expect(first, 'the token never appeared in any write').toBeDefined();
  expect(first!.channel).toBe('stdout');
  expect(first!.text).toBe(`::add-mask::${token}\n`);
  const printed = step.trace.filter((e) => (e.channel === 'stdout' || e.channel === 'stderr') && e.text.includes(token));
  expect(printed.map((e) => e.text)).toEqual([`::add-mask::${token}\n`]);
}

describe('the runner stand-in', () => {
  it('runs the bundles under Node 24 or later, as action.yml declares', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
    expect(() => assertNodeForBundles('20.19.0')).toThrow(/under Node 24; this is Node 20\.19\.0/);
    expect(() => assertNodeForBundles('24.0.0')).not.toThrow();
  });
});

describe('a production deploy from a push to main', () => {
  it('gets a production token, masks it first, outputs and exports it, summarises, and the post step revokes it', async () => {
    const endpoint = await runnerEndpoint();
    const j = await job();
    const main = await j.run('main', {
      inputs: { url: service.url, site: 'docs', 'export-env': 'DEPLOY_TOKEN' },
      env: oidcEnv(endpoint),
    });
    expect(main.stdout).not.toContain('::error::');
    expect(main.exitCode).toBe(0);

    const token = main.outputs.token!;
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(main.outputs).toMatchObject({ context: 'production', site: 'docs', rule: 'production', scope: 'deployments:write' });
    const expiresAt = Date.parse(main.outputs['expires-at']!);
    expect(new Date(expiresAt).toISOString()).toBe(main.outputs['expires-at']);
    expect(expiresAt).toBeGreaterThan(Date.now());
    expect(main.exportedEnv).toEqual({ DEPLOY_TOKEN: token });
    expect(endpoint.audiences).toEqual([service.audience]);
    expect(service.audience).toBe(AUDIENCE);

    expectMaskedFirst(main, token);
    expect(main.stderr).not.toContain(token);
    expect(main.summary).toContain('<td>docs</td>');
    expect(main.summary).toContain('<code>production</code>');
    expect(main.summary).toContain('<code>deployments:write</code>');
    expect(main.summary).toContain('<th align="left">Granted by rule</th><td>production</td>');
    expect(main.summary).toContain(main.outputs['expires-at']);
    expect(main.summary).not.toContain(token);
    expect(main.state).toEqual({ token, url: service.url });

    expect(await introspect(token)).toMatchObject({ active: true, site: 'docs', context: 'production' });

    const post = await j.run('post', { env: stateEnv(main.state) });
    expect(post.exitCode).toBe(0);
    expect(post.stdout).toContain('Revoked the deploy token.');
    expect(post.stdout).not.toContain('::warning::');
    expectMaskedFirst(post, token);
    expect(await introspect(token)).toEqual({ active: false });
  });
});

describe('a fork preview from pull_request_target', () => {
  it('gets a preview token from the previews rule, and the post step revokes it', async () => {
    const endpoint = await runnerEndpoint({
      event_name: 'pull_request_target',
      environment: undefined,
      sub: 'repo:acme/docs:pull_request',
      head_ref: 'contributor-patch',
      base_ref: 'main',
      job_workflow_ref: 'acme/docs/.github/workflows/preview.yml@refs/heads/main',
      workflow_ref: 'acme/docs/.github/workflows/preview.yml@refs/heads/main',
    });
    const j = await job();
    const main = await j.run('main', {
      inputs: { url: service.url, site: 'docs' },
      env: { ...oidcEnv(endpoint), GITHUB_EVENT_NAME: 'pull_request_target' },
    });
    expect(main.stdout).not.toContain('::error::');
    expect(main.exitCode).toBe(0);
    const token = main.outputs.token!;
    expect(main.outputs).toMatchObject({ context: 'preview', rule: 'previews', site: 'docs' });
    expect(main.exportedEnv).toEqual({});
    expectMaskedFirst(main, token);
    expect(main.summary).toContain('preview deploy token issued');
    expect(await introspect(token)).toMatchObject({ active: true, context: 'preview' });

    const post = await j.run('post', { env: stateEnv(main.state) });
    expect(post.exitCode).toBe(0);
    expect(await introspect(token)).toEqual({ active: false });
  });

  it('cannot get production by asking for it', async () => {
    // The pinned preview workflow, in the production environment, asking for production: still only a preview.
    const pinned = 'acme/docs/.github/workflows/preview.yml@refs/heads/main';
    const endpoint = await runnerEndpoint({ event_name: 'pull_request_target', environment: 'production', job_workflow_ref: pinned, workflow_ref: pinned });
    const j = await job();
    const main = await j.run('main', { inputs: { url: service.url, site: 'docs' }, env: oidcEnv(endpoint) });
    expect(main.exitCode).toBe(0);
    expect(main.outputs.context).toBe('preview');
    await j.run('post', { env: stateEnv(main.state) });
  });
});

describe('a denial', () => {
  it("fails with the service's words, the token's claims and the explain command, and leaves nothing to revoke", async () => {
    const endpoint = await runnerEndpoint({ ref: 'refs/heads/feature' });
    const j = await job();
    const main = await j.run('main', { inputs: { url: service.url, site: 'docs' }, env: oidcEnv(endpoint) });
    expect(main.exitCode).toBe(1);
    const message = failureMessage(main);
    expect(message).toContain('deploy-sts [denied]');
    expect(message).toMatch(/invalid_target: .*ref "refs\/heads\/feature"/);
    expect(message).toContain('  event_name: push');
    expect(message).toContain('  ref: refs/heads/feature');
    expect(message).toContain('  job_workflow_ref: acme/docs/.github/workflows/deploy.yml@refs/heads/main');
    expect(message).toContain('  environment: production');
    expect(message).toContain('  repository: acme/docs');
    expect(message).toContain('  repository_id: 892043217');
    expect(message).toMatch(/^  printf '%s\\n' '\{.*"ref":"refs\/heads\/feature".*\}' \| deploy-sts policy explain --site docs --policies .* --claims -$/m);
    expect(main.outputs).toEqual({});
    expect(main.state).toEqual({});

    const post = await j.run('post', { env: stateEnv(main.state) });
    expect(post.exitCode).toBe(0);
    expect(post.stdout).toContain('No deploy token to revoke');
  });
});

describe('a job without id-token: write', () => {
  it('fails with the permission to add and the fork pull_request explanation', async () => {
    const j = await job();
    const main = await j.run('main', { inputs: { url: service.url, site: 'docs' }, env: { GITHUB_EVENT_NAME: 'pull_request' } });
    expect(main.exitCode).toBe(1);
    const message = failureMessage(main);
    expect(message).toContain('deploy-sts [id_token_unavailable]');
    expect(message).toContain('permissions: id-token: write');
    expect(message).toContain('pull_request_target');
    expect(message).toContain('https://github.com/deploy-sts/deploy-sts#fork-previews');
  });
});

describe('an unreachable service', () => {
  it('fails saying so, with the URL and the number of attempts', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const endpoint = await runnerEndpoint();
    const j = await job();
    const main = await j.run('main', { inputs: { url, site: 'docs', audience: service.audience }, env: oidcEnv(endpoint) });
    expect(main.exitCode).toBe(1);
    const message = failureMessage(main);
    expect(message).toContain(`deploy-sts [unreachable]: The exchange service at ${url} is unreachable: connection refused (ECONNREFUSED) (after 4 attempts)`);
    expect(message).toContain('Fix: ');
    // A fresh OIDC token for every attempt.
    expect(endpoint.audiences).toHaveLength(4);
  });
});

describe('a service that answers 503 once', () => {
  it('waits as told by Retry-After and succeeds with a fresh OIDC token', async () => {
    const proxy = await startFlakyProxy(service.url, { failFirst: 1, retryAfter: '1' });
    cleanups.push(() => proxy.close());
    const endpoint = await runnerEndpoint();
    const j = await job();
    const main = await j.run('main', { inputs: { url: proxy.url, site: 'docs' }, env: oidcEnv(endpoint) });
    expect(main.stdout).not.toContain('::error::');
    expect(main.exitCode).toBe(0);
    expect(main.stdout).toMatch(/Attempt 1 of 4 to http:\/\/127\.0\.0\.1:\d+\/token failed \(HTTP 503\); retrying in 1s\./);
    expect(proxy.tokenRequests).toHaveLength(2);
    expect(proxy.tokenRequests[0]).not.toBe(proxy.tokenRequests[1]);
    expect(main.outputs.context).toBe('production');
    const token = main.outputs.token!;
    expectMaskedFirst(main, token);

    const post = await j.run('post', { env: stateEnv(main.state) });
    expect(post.exitCode).toBe(0);
    expect(await introspect(token)).toEqual({ active: false });
  });
});
