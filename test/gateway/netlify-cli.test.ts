/**
 * The Netlify deploy gateway end to end, as a workflow uses it: the real `netlify` CLI with NETLIFY_API_URL at the
 * gateway and a real deploy-sts token as NETLIFY_AUTH_TOKEN, against the real service and the Netlify stand-in.
 * Every refusal is checked against the stand-in's record: what was refused never reached "Netlify".
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSiteDir, refusedHosts, runNetlify, type NetlifyRun, type SiteDir } from '../helpers/netlify/cli.js';
import { ROOT, postForm } from '../helpers/service.js';
import { CREDENTIAL, reached, startGatewayWorld, type GatewayWorld } from './support.js';

const CLI_TIMEOUT = 120_000;
let world: GatewayWorld;
const sites: SiteDir[] = [];
/** Everything the CLI printed in this file, to prove the stored credential never appears in it. */
const seen: string[] = [];

beforeAll(async () => {
  world = await startGatewayWorld();
});
afterAll(async () => {
  for (const s of sites) s.remove();
  await world?.stop();
});

function site(files: Record<string, string | Buffer> = { 'index.html': `<h1>docs ${randomBytes(4).toString('hex')}</h1>`, 'css/site.css': 'h1{}' }): SiteDir {
  const dir = makeSiteDir({ files });
  sites.push(dir);
  return dir;
}

async function netlify(args: string[], token: string, dir: SiteDir = site()): Promise<NetlifyRun> {
  const run = await runNetlify(args, { apiUrl: world.apiUrl, token, cwd: dir.root });
  seen.push(run.output);
  return run;
}

const deploy = (token: string, dir: SiteDir, ...extra: string[]) =>
  netlify(['deploy', '--no-build', '--dir', dir.publishDir, '--site', 'acme-docs', ...extra], token, dir);

describe('a preview token (fork pull request)', () => {
  it('makes a draft deploy: files uploaded, production unchanged', { timeout: CLI_TIMEOUT }, async () => {
    const publishedBefore = world.standin.published(world.docs.id)?.id;
    const before = world.standin.deploysOf(world.docs.id).length;
    const dir = site();
    const run = await deploy(await world.token('preview'), dir);
    expect(run.code, run.output).toBe(0);
    const deploys = world.standin.deploysOf(world.docs.id);
    expect(deploys).toHaveLength(before + 1);
    const created = deploys.find((d) => !world.standin.deploysOf(world.docs.id).slice(0, before).includes(d)) ?? deploys.at(-1)!;
    expect(created).toMatchObject({ draft: true, branch: null, context: 'deploy-preview', state: 'ready' });
    expect(created.uploads.map((u) => u.path)).toEqual(expect.arrayContaining(['css/site.css', 'index.html']));
    expect(world.standin.published(world.docs.id)?.id).toBe(publishedBefore);
    // What reached Netlify carried the stored credential, never the deploy token.
    const auth = new Set(world.standin.requests.map((r) => r.headers.authorization));
    expect([...auth]).toEqual([`Bearer ${world.standin.token}`]);
  });

  it('is refused production: the CLI exits non-zero and shows the gateway\'s message', { timeout: CLI_TIMEOUT }, async () => {
    const publishedBefore = world.standin.published(world.docs.id)?.id;
    const creates = reached(world, /^POST .*\/deploys$/).length;
    const run = await deploy(await world.token('preview'), site(), '--prod');
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toMatch(/preview/i);
    expect(run.output).toMatch(/without --prod|draft/);
    expect(reached(world, /^POST .*\/deploys$/)).toHaveLength(creates);
    expect(world.standin.published(world.docs.id)?.id).toBe(publishedBefore);
  });
});

describe('a production token (push to main)', () => {
  it('publishes', { timeout: CLI_TIMEOUT }, async () => {
    const run = await deploy(await world.token('production'), site({ 'index.html': '<h1>live</h1>' }), '--prod');
    expect(run.code, run.output).toBe(0);
    const live = world.standin.published(world.docs.id);
    expect(live).toMatchObject({ draft: false, context: 'production', state: 'ready' });
    expect(live!.files.get('index.html')).toBeDefined();
  });
});

describe('tokens the gateway refuses', () => {
  /**
   * The CLI fails at its first request (it prints its own "Unauthorized" for a 401), nothing reaches Netlify, and
   * the gateway's answer — seen directly — names the reason; the audit log has it too.
   */
  async function expectNoDeploy(token: string, reason: string, message: RegExp): Promise<void> {
    const before = world.standin.requests.length;
    const deploys = world.standin.deploysOf(world.docs.id).length;
    const run = await deploy(token, site(), '--prod');
    expect(run.code, run.output).not.toBe(0);
    expect(world.standin.deploysOf(world.docs.id)).toHaveLength(deploys);
    const direct = await fetch(`${world.apiUrl}/sites/${world.docs.id}/deploys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ files: { 'index.html': 'a'.repeat(40) }, draft: false }),
    });
    expect(direct.status).toBe(401);
    const body = (await direct.json()) as { code: number; message: string };
    expect(body.code).toBe(401);
    expect(body.message).toMatch(message);
    expect(world.standin.requests.slice(before)).toEqual([]);
    const audit = await world.svc.service.storage.gateway.listGatewayAudit({ limit: 5 });
    expect(audit[0]).toMatchObject({ result: 'refused', reason, status: 401, upstreamStatus: null });
  }

  it('refuses a revoked token on its next request', { timeout: CLI_TIMEOUT }, async () => {
    const token = await world.token('production');
    expect((await postForm(`${world.svc.url}/revoke`, { token })).status).toBe(200);
    await expectNoDeploy(token, 'revoked', /revoked/);
  });

  it('refuses an expired token', { timeout: CLI_TIMEOUT }, async () => {
    await expectNoDeploy(await world.mintedAgo(120, 60), 'expired', /expired/);
  });

  it('refuses a token minted for another audience', { timeout: CLI_TIMEOUT }, async () => {
    await expectNoDeploy(await world.token('production', 'plain'), 'wrong_audience', /audience/);
  });

  it('refuses a token for another site: the docs site is not found and gets no deploy', { timeout: CLI_TIMEOUT }, async () => {
    const before = world.standin.requests.length;
    const run = await deploy(await world.token('production', 'blog'), site(), '--prod');
    expect(run.code, run.output).not.toBe(0);
    expect(world.standin.requests.slice(before).some((r) => r.path.includes(world.docs.id))).toBe(false);
    expect(world.standin.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
  });
});

describe('`netlify api` calls a deploy token never gets through', () => {
  const calls: [string, () => string[], RegExp][] = [
    ['deleting the site', () => ['api', 'deleteSite', '--data', JSON.stringify({ site_id: world.docs.id })], /DELETE /],
    ['reading an environment variable', () => ['api', 'getEnvVar', '--data', JSON.stringify({ account_id: 'acme', key: 'SECRET', site_id: world.docs.id })], /\/env/],
    ['listing the account\'s sites', () => ['api', 'listSites'], /^GET \/api\/v1\/sites(\?|$)/],
    ['changing site settings', () => ['api', 'updateSite', '--data', JSON.stringify({ site_id: world.docs.id, body: { name: 'pwned' } })], /^(PATCH|PUT) \/api\/v1\/sites\/[^/]+$/],
    ['restoring a deploy (preview token)', () => ['api', 'restoreSiteDeploy', '--data', JSON.stringify({ site_id: world.docs.id, deploy_id: world.standin.published(world.docs.id)?.id ?? '0123456789abcdef01234567' })], /restore/],
  ];
  for (const [what, args, pattern] of calls) {
    it(`refuses ${what}, which never reaches Netlify`, { timeout: CLI_TIMEOUT }, async () => {
      const before = world.standin.requests.length;
      const run = await netlify(args(), await world.token('preview'));
      expect(run.code, run.output).not.toBe(0);
      expect(run.output).toMatch(/Forbidden|Not Found|refused/i);
      const [row] = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 1 });
      expect(row).toMatchObject({ result: 'refused', context: 'preview', upstreamStatus: null });
      const after = world.standin.requests.slice(before).map((r) => `${r.method} ${r.path}`);
      expect(after.filter((line) => pattern.test(line))).toEqual([]);
      expect(world.docs.deleted).toBe(false);
      expect(world.docs.name).toBe('acme-docs');
    });
  }
});

describe('large files', () => {
  it('streams a 100 MB file through to Netlify', { timeout: 300_000 }, async () => {
    const dir = site({ 'index.html': '<h1>big</h1>' });
    const big = randomBytes(1024 * 1024);
    const file = join(dir.root, dir.publishDir, 'big.bin');
    writeFileSync(file, Buffer.alloc(0));
    for (let i = 0; i < 100; i++) {
      big[0] = i; // every MiB differs
      appendFileSync(file, big);
    }
    const run = await runNetlify(['deploy', '--no-build', '--dir', dir.publishDir, '--site', 'acme-docs'], {
      apiUrl: world.apiUrl, token: await world.token('preview'), cwd: dir.root, timeoutMs: 280_000,
    });
    seen.push(run.output);
    expect(run.code, run.output).toBe(0);
    const upload = world.standin.deploysOf(world.docs.id).at(-1)!.uploads.find((u) => u.path === 'big.bin');
    expect(upload?.size).toBe(100 * 1024 * 1024);
    const audit = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 50 });
    expect(audit.find((a) => a.route === 'deploy.upload-file' && a.bytesIn === 100 * 1024 * 1024)).toMatchObject({ result: 'forwarded', upstreamStatus: 200 });
  });
});

describe('the audit log', () => {
  it('has every gateway call, forwarded or refused, with site, jti, route, deploy id, status and bytes', async () => {
    const rows = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 1000 });
    const create = rows.find((r) => r.route === 'deploy.create' && r.result === 'forwarded');
    expect(create).toMatchObject({ platform: 'netlify', method: 'POST', status: 200, upstreamStatus: 200 });
    expect(create!.deployId).toMatch(/^[0-9a-f]{24}$/);
    expect(create!.tokenJti).toMatch(/^[0-9a-f-]{36}$/);
    expect(rows.some((r) => r.result === 'refused' && r.context === 'preview')).toBe(true);
    expect(rows.some((r) => r.reason === 'revoked')).toBe(true);
  });

  it('is what `deploy-sts audit --site docs` shows, with the token decisions', async () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'build', 'exchange-service', 'cli.js'), 'audit', '--site', 'docs', '--limit', '500', '--json'], {
      env: { PATH: process.env.PATH ?? '', DEPLOY_STS_DATA_DIR: world.svc.dataDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const entries = JSON.parse(result.stdout) as { kind: string; route?: string; result: string }[];
    expect(entries.some((e) => e.kind === 'gateway' && e.route === 'deploy.create' && e.result === 'forwarded')).toBe(true);
    expect(entries.some((e) => e.kind === 'gateway' && e.result === 'refused')).toBe(true);
    expect(entries.some((e) => e.kind === 'token' && e.result === 'granted')).toBe(true);
    expect(result.stdout).not.toContain(world.standin.token);
  });
});

describe('the network', () => {
  it('is loopback only: the one outside host the CLI tries (api.netlifysdk.com, for its extension API) is refused at once', () => {
    // A new outside host here is a decision to make, not a test to update blindly.
    expect([...new Set(seen.flatMap(refusedHosts))]).toEqual(['api.netlifysdk.com']);
  });
});

describe('secrets', () => {
  it('never show the stored credential in any output, answer or log line', async () => {
    const direct = await fetch(`${world.apiUrl}/sites/${world.docs.id}`, { headers: { authorization: `Bearer ${await world.token('preview')}` } });
    const answer = `${[...direct.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${await direct.text()}`;
    for (const text of [...seen, answer, ...world.svc.logs]) {
      expect(text).not.toContain(world.standin.token);
    }
    expect(world.svc.logs.join('\n')).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    expect(world.svc.logs.some((l) => l.includes('"event":"gateway"'))).toBe(true);
  });

  it('keeps the credential name, never its value, in the 503 for a missing credential', async () => {
    // The last test of the file: the credential stays removed.
    await world.svc.service.storage.gateway.removeCredential(CREDENTIAL);
    {
      const res = await fetch(`${world.apiUrl}/sites/${world.docs.id}/deploys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await world.token('production')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ files: {}, draft: false }),
      });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { code: number; message: string };
      expect(body.code).toBe(503);
      expect(body.message).toContain(`deploy-sts credentials set ${CREDENTIAL}`);
    }
  });
});
