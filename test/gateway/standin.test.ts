/**
 * The Netlify stand-in is only worth what it matches: the real `netlify` CLI deploys straight to it (no gateway),
 * and what the CLI sends and expects is what the stand-in records and models.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSiteDir, runNetlify, type SiteDir } from '../helpers/netlify/cli.js';
import { startNetlifyStandin, type NetlifyStandin, type StandinSite } from '../helpers/netlify/standin.js';

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

let netlify: NetlifyStandin;
let site: StandinSite;
const dirs: SiteDir[] = [];

beforeAll(async () => {
  netlify = await startNetlifyStandin();
  site = netlify.addSite({ name: 'docs', id: '3970e0fe-8564-4903-9a55-c5f8de49fb8b' });
  netlify.addSite({ name: 'docs-old' });
});

afterAll(async () => {
  await netlify.close();
  for (const dir of dirs) dir.remove();
});

function siteDir(files: Record<string, string>, functions?: Record<string, string>): SiteDir {
  const dir = makeSiteDir({ files, functions });
  dirs.push(dir);
  return dir;
}

async function deploy(dir: SiteDir, ...flags: string[]) {
  const before = netlify.requests.length;
  const run = await runNetlify(['deploy', '--no-build', '--dir', dir.publishDir, '--site', 'docs', ...flags], {
    apiUrl: netlify.apiUrl,
    token: netlify.token,
    cwd: dir.root,
  });
  const requests = netlify.requests.slice(before);
  const created = requests.find((r) => r.method === 'POST' && r.path === `/api/v1/sites/${site.id}/deploys` && r.status === 200);
  const deployId = created ? (netlify.deploysOf(site.id).at(-1)?.id ?? '') : '';
  return { run, requests, deploy: netlify.deploys.get(deployId) };
}

describe('the real netlify CLI against the stand-in', { timeout: 120_000 }, () => {
  it('makes a draft deploy by default: files uploaded, production unchanged', async () => {
    const dir = siteDir({ 'index.html': '<h1>draft</h1>\n', 'css/site.css': 'body { color: red }\n' });
    const { run, requests, deploy: d } = await deploy(dir);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('Draft URL');

    expect(d).toBeDefined();
    expect(d!.draft).toBe(true);
    expect(d!.context).toBe('deploy-preview');
    expect(d!.state).toBe('ready');
    expect(d!.files.get('index.html')).toBe(sha1('<h1>draft</h1>\n'));
    expect(d!.uploads.map((u) => u.path).sort()).toEqual(['css/site.css', 'index.html', 'netlify.toml']);
    expect(netlify.published(site.id)).toBeUndefined();

    // The sequence the gateway's allowlist is derived from.
    const calls = requests.map((r) => `${r.method} ${r.path.replace(d!.id, '{deploy}')}`);
    expect(calls).toEqual(
      expect.arrayContaining([
        'GET /api/v1/sites/docs',
        'GET /api/v1/accounts',
        'GET /api/v1/sites',
        `GET /api/v1/accounts/${site.account_slug}/env`,
        `POST /api/v1/sites/${site.id}/deploys`,
        `PUT /api/v1/sites/${site.id}/deploys/{deploy}`,
        'PUT /api/v1/deploys/{deploy}/files/index.html',
        'PUT /api/v1/deploys/{deploy}/files/css/site.css',
        `GET /api/v1/sites/${site.id}/deploys/{deploy}`,
      ]),
    );
    const create = requests.find((r) => r.method === 'POST')!;
    expect(create.json).toEqual({ draft: true, include_upload_url: false, deploy_source: 'cli' });
    // The CLI sends draft: false with the digests even for a draft: draftness is decided at creation.
    const update = requests.find((r) => r.method === 'PUT' && r.path.endsWith(d!.id))!;
    expect(update.json).toMatchObject({ draft: false, async: false, files: expect.any(Object) });
    const upload = requests.find((r) => r.path.endsWith('/files/index.html'))!;
    expect(upload.headers['content-type']).toBe('application/octet-stream');
    expect(upload.bodyBytes).toBe(Buffer.byteLength('<h1>draft</h1>\n'));
    for (const r of requests) expect(r.headers.authorization).toBe(`Bearer ${netlify.token}`);
  });

  it('publishes with --prod: the deploy becomes the published deploy', async () => {
    const dir = siteDir({ 'index.html': '<h1>live</h1>\n' });
    const { run, requests, deploy: d } = await deploy(dir, '--prod');
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('Production URL: <https://docs.netlify.app>');
    expect(requests.find((r) => r.method === 'POST')!.json).toEqual({ draft: false, include_upload_url: false, deploy_source: 'cli' });
    expect(d!.context).toBe('production');
    expect(netlify.published(site.id)?.id).toBe(d!.id);
    expect(netlify.siteJson(site).published_deploy).toMatchObject({ id: d!.id, state: 'ready', context: 'production' });
  });

  it('uploads functions with their SHA-256 digests', async () => {
    const dir = siteDir({ 'index.html': '<h1>fn</h1>\n' }, { 'hello.mjs': 'export default async () => new Response("hello")\n' });
    const { run, requests, deploy: d } = await deploy(dir, '--functions', dir.functionsDir);
    expect(run.code, run.output).toBe(0);
    expect([...d!.functions.keys()]).toEqual(['hello']);
    expect(d!.functionUploads).toHaveLength(1);
    expect(d!.functionUploads[0]!.sha).toBe(d!.functions.get('hello'));
    const upload = requests.find((r) => r.path === `/api/v1/deploys/${d!.id}/functions/hello`)!;
    expect(upload.query.get('runtime')).toMatch(/^nodejs/);
    expect(upload.bodyBytes).toBe(d!.functionUploads[0]!.size);
  });

  it('makes a branch deploy with --alias (not a draft, not published)', async () => {
    const published = netlify.published(site.id)?.id;
    const { run, requests, deploy: d } = await deploy(siteDir({ 'index.html': '<h1>alias</h1>\n' }), '--alias', 'pr-7');
    expect(run.code, run.output).toBe(0);
    expect(requests.find((r) => r.method === 'POST')!.json).toMatchObject({ draft: false, branch: 'pr-7' });
    expect(d).toMatchObject({ draft: false, branch: 'pr-7', context: 'branch-deploy', state: 'ready' });
    expect(netlify.published(site.id)?.id).toBe(published);
  });

  it('diffs asynchronously above 100 files, and asks only for content it does not have', async () => {
    const published = netlify.published(site.id)?.id;
    const files: Record<string, string> = {};
    for (let i = 0; i < 101; i++) files[`page-${i}.html`] = `<p>${i}</p>\n`;
    const first = await deploy(siteDir(files));
    expect(first.run.code, first.run.output).toBe(0);
    expect(first.requests.find((r) => r.method === 'PUT' && r.path.endsWith(first.deploy!.id))!.json).toMatchObject({ async: true });
    expect(first.deploy!.uploads.filter((u) => u.path.startsWith('page-'))).toHaveLength(101);
    expect(first.deploy!.state).toBe('ready');

    const second = await deploy(siteDir(files));
    expect(second.run.code, second.run.output).toBe(0);
    expect(second.deploy!.state).toBe('ready');
    expect(second.deploy!.uploads).toEqual([]);
    expect(second.requests.some((r) => r.path.includes('/files/'))).toBe(false);
    // Drafts never change what is published.
    expect(netlify.published(site.id)?.id).toBe(published);
  });
});

describe('the stand-in on its own', () => {
  async function call(method: string, path: string, init: { body?: string | Buffer; token?: string; type?: string } = {}) {
    const res = await fetch(`${netlify.apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${init.token ?? netlify.token}`,
        ...(init.body !== undefined ? { 'content-type': init.type ?? 'application/json' } : {}),
      },
      body: init.body,
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
  }

  it('answers errors in Netlify shape', async () => {
    expect(await call('GET', '/sites/nope')).toEqual({ status: 404, body: { code: 404, message: 'Not Found' } });
    expect((await call('GET', `/sites/${site.id}`, { token: 'wrong' })).body).toMatchObject({ code: 401 });
    expect((await call('POST', `/sites/${site.id}/deploys`, { body: '{' })).body).toEqual({ code: 400, message: 'the request body is not valid JSON' });
  });

  it('refuses an upload whose content does not match its digest, and records its size', async () => {
    const created = await call('POST', `/sites/${site.id}/deploys`, { body: JSON.stringify({ draft: true }) });
    const id = created.body!.id as string;
    const updated = await call('PUT', `/sites/${site.id}/deploys/${id}`, { body: JSON.stringify({ files: { 'a.txt': sha1('right') } }) });
    expect(updated.body).toMatchObject({ state: 'prepared', required: [sha1('right')] });
    const wrong = await call('PUT', `/deploys/${id}/files/a.txt`, { body: 'wrong!', type: 'application/octet-stream' });
    expect(wrong.status).toBe(422);
    expect(wrong.body!.message).toContain('does not match');
    expect(netlify.requests.at(-1)!.bodyBytes).toBe(6);
    const right = await call('PUT', `/deploys/${id}/files/a.txt`, { body: 'right', type: 'application/octet-stream' });
    expect(right).toEqual({ status: 200, body: { id: sha1('right'), path: '/a.txt', sha: sha1('right'), mime_type: 'application/octet-stream', size: 5 } });
    expect(netlify.deploys.get(id)!.state).toBe('ready');
  });

  it('streams an upload through a hash: a 32 MB file is counted and checked, not buffered', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const hash = createHash('sha1');
    for (let i = 0; i < 32; i++) hash.update(chunk);
    const digest = hash.digest('hex');
    const created = await call('POST', `/sites/${site.id}/deploys`, { body: JSON.stringify({ draft: true }) });
    const id = created.body!.id as string;
    await call('PUT', `/sites/${site.id}/deploys/${id}`, { body: JSON.stringify({ files: { 'big.bin': digest } }) });
    const body = Readable.from((function* () {
      for (let i = 0; i < 32; i++) yield chunk;
    })());
    const res = await fetch(`${netlify.apiUrl}/deploys/${id}/files/big.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${netlify.token}`, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sha: digest, size: 32 * 1024 * 1024 });
    expect(netlify.deploys.get(id)!.uploads).toEqual([{ path: 'big.bin', sha: digest, size: 32 * 1024 * 1024 }]);
    expect(netlify.requests.at(-1)!.headers['transfer-encoding']).toBe('chunked');
  });

  it('restores an earlier ready deploy and rolls back to the previous one', async () => {
    const shop = netlify.addSite({ name: 'shop' });
    async function publishNew(content: string): Promise<string> {
      const created = await call('POST', `/sites/${shop.id}/deploys`, { body: JSON.stringify({ files: { 'r.txt': sha1(content) } }) });
      const id = created.body!.id as string;
      await call('PUT', `/deploys/${id}/files/r.txt`, { body: content, type: 'application/octet-stream' });
      return id;
    }
    const first = await publishNew('first');
    const second = await publishNew('second');
    expect(netlify.published(shop.id)!.id).toBe(second);
    const restored = await call('POST', `/sites/${shop.id}/deploys/${first}/restore`);
    expect(restored.status).toBe(201);
    expect(netlify.published(shop.id)!.id).toBe(first);
    expect((await call('PUT', `/sites/${shop.id}/rollback`)).status).toBe(204);
    expect(netlify.published(shop.id)!.id).toBe(second);
    expect((await call('POST', `/sites/${site.id}/deploys/${first}/restore`)).status).toBe(404);
  });

  it('models deleting a site, so a test can tell it never happened', async () => {
    const doomed = netlify.addSite({ name: 'doomed' });
    expect((await call('DELETE', `/sites/${doomed.id}`)).status).toBe(204);
    expect(doomed.deleted).toBe(true);
    expect((await call('GET', `/sites/${doomed.id}`)).status).toBe(404);
  });
});
