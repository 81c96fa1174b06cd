/**
 * An outsider with a leaked token attacks the gateway: each finding of the review is one test here, asserting what
 * reached the Netlify stand-in (nothing, when the gateway must refuse) and what came back.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../exchange-service/config.js';
import { postForm } from '../helpers/service.js';
import { createDraft, startGatewayWorld, type GatewayWorld, rawRequest } from './support.js';

/** Every answer of the run (status line, headers and body), checked at the end for the stored credential. */
const seen: string[] = [];

const request = (url: string, method: string, path: string, headers: Record<string, string | number>, body?: Buffer) => rawRequest(url, method, path, headers, body, seen);

const API = '/gateway/netlify/api/v1';
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('an outsider with a leaked token', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld();
  });
  afterAll(async () => {
    world?.standin.intercept(undefined);
    await world?.stop();
  });

  const auth = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

  describe('answers Netlify labels as something other than JSON', () => {
    it("never pass the site's secrets through unsanitised, whatever the Content-Type says", async () => {
      const token = await world.token('preview');
      for (const type of ['text/plain; charset=utf-8', undefined, 'application/octet-stream']) {
        world.standin.intercept((req, res) => {
          if (req.method === 'GET' && req.url === `/api/v1/sites/${world.docs.id}`) {
            const body = JSON.stringify(world.standin.siteJson(world.docs));
            res.writeHead(200, type === undefined ? {} : { 'content-type': type }).end(body);
            return true;
          }
          return false;
        });
        try {
          for (const path of [`${API}/sites/${world.docs.id}`, `${API}/sites?name=acme-docs`]) {
            const res = await request(world.svc.url, 'GET', path, { authorization: `Bearer ${token}` });
            expect(res.status, res.text).toBe(200);
            expect(res.headers['content-type']).toContain('application/json');
            expect(res.text).toContain(world.docs.id);
            for (const secret of [world.docs.password, world.docs.deploy_hook, world.docs.hooks_access_token, 'LEGACY_SECRET', 'owner@acme.example']) {
              expect(res.text, `${String(type)} ${path}`).not.toContain(secret);
            }
          }
        } finally {
          world.standin.intercept(undefined);
        }
      }
    });
  });

  describe("another fork's preview deploy", () => {
    it("is out of reach of a leaked preview token: no poll, digest change, upload or cancel of another token's draft reaches Netlify", async () => {
      const victim = await world.token('preview');
      const attacker = await world.token('preview');
      const page = Buffer.from('<p>the victim PR</p>');
      const deployId = await createDraft(world, victim, { 'index.html': sha1(page) });

      const evil = Buffer.from('<p>defaced by another fork</p>');
      const before = world.standin.requests.length;
      const attempts: [string, string, Buffer | undefined][] = [
        ['GET', `${API}/deploys/${deployId}`, undefined],
        ['GET', `${API}/sites/${world.docs.id}/deploys/${deployId}`, undefined],
        ['PUT', `${API}/sites/${world.docs.id}/deploys/${deployId}`, json({ files: { 'index.html': sha1(evil) } })],
        ['PUT', `${API}/deploys/${deployId}/files/index.html`, evil],
        ['POST', `${API}/deploys/${deployId}/cancel`, undefined],
      ];
      for (const [method, path, body] of attempts) {
        const headers: Record<string, string | number> = { ...auth(attacker) };
        if (body) headers['content-length'] = body.length;
        if (method === 'PUT' && path.includes('/files/')) headers['content-type'] = 'application/octet-stream';
        const res = await request(world.svc.url, method, path, headers, body);
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
        expect(res.json().message, path).toContain(`deploy ${deployId}`);
      }
      expect(world.standin.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([]);

      // The victim's own token still finishes its deploy.
      const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${deployId}/files/index.html`, {
        authorization: `Bearer ${victim}`,
        'content-type': 'application/octet-stream',
        'content-length': page.length,
      }, page);
      expect(upload.status, upload.text).toBe(200);
      const done = await request(world.svc.url, 'GET', `${API}/deploys/${deployId}`, auth(victim));
      expect(done.json()).toMatchObject({ id: deployId, state: 'ready', draft: true });
    });
  });

  describe("a fork's draft", () => {
    it('is never published by a production restore: the fork content stays a draft, nothing reaches Netlify', async () => {
      const fork = await world.token('preview');
      const page = Buffer.from('<h1>fork content</h1>');
      const draftId = await createDraft(world, fork, { 'index.html': sha1(page) });
      const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${draftId}/files/index.html`, {
        authorization: `Bearer ${fork}`, 'content-type': 'application/octet-stream', 'content-length': page.length,
      }, page);
      expect(upload.status, upload.text).toBe(200);
      const published = world.standin.published(world.docs.id)?.id ?? null;

      const before = world.standin.requests.length;
      const production = await world.token('production');
      const restored = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys/${draftId}/restore`, { authorization: `Bearer ${production}` });
      expect(restored.status, restored.text).toBe(403);
      expect(restored.json().message).toContain('preview');
      expect(world.standin.requests.slice(before)).toEqual([]);
      expect(world.standin.published(world.docs.id)?.id ?? null).toBe(published);
    });
  });

  describe('DEPLOY_STS_NETLIFY_API_URL', () => {
    it('refuses an empty query or fragment marker, which would send every request (with the credential) to the bare base URL', () => {
      for (const url of ['https://api.netlify.com/api/v1?', 'https://api.netlify.com/api/v1#', 'https://api.netlify.com/api/v1?#']) {
        let message = '';
        try {
          const config = loadConfig({ DEPLOY_STS_POLICIES: 'examples/policies', DEPLOY_STS_NETLIFY_API_URL: url });
          message = `accepted: ${config.gateway.netlifyApiUrl}`;
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          message = error.message;
        }
        expect(message, url).toMatch(/DEPLOY_STS_NETLIFY_API_URL[\s\S]*query or a fragment/);
      }
      // What such a base does to a gateway path: the path is no longer a path.
      expect(new URL('https://api.netlify.com/api/v1?' + '/sites/x').pathname).toBe('/api/v1');
    });
  });

  describe('what held', () => {
    it('refuses every body, query, path and method trick of a preview token before Netlify', async () => {
      const token = await world.token('preview');
      const prod = await world.token('production');
      const blog = await world.token('production', 'blog');
      const own = await createDraft(world, token, { 'a.html': sha1(Buffer.from('a')) });
      const prodDeploy = await createDraft(world, prod, { 'a.html': sha1(Buffer.from('a')) });
      const site = world.docs.id;
      const before = world.standin.requests.length;
      const raw = (text: string) => Buffer.from(text);
      const probes: [string, string, string, Buffer | undefined, Record<string, string>?][] = [
        // create bodies
        ...['{"draft":"false"}', '{"draft":0}', '{"draft":false}', '{"draft":true,"draft":false}', '{"production":true}', '{"branch":"main"}', '{"__proto__":{"draft":false}}',
          '{"constructor":{"prototype":{"draft":false}}}', '{"files":{"a.html":"' + sha1(Buffer.from('a')) + '"}}', '{"framework":"x"}', '{"title":"x"}', '{"site_id":"' + world.other.id + '"}',
          '{"include_upload_url":true}', '{"draft":null}', '[]', 'draft=false', '{"draft":true}garbage'].map(
          (b): [string, string, string, Buffer] => [token, 'POST', `${API}/sites/${site}/deploys`, raw(b)],
        ),
        [token, 'POST', `${API}/sites/${site}/deploys`, raw('draft=false'), { 'content-type': 'application/x-www-form-urlencoded' }],
        // create queries
        ...['site_id=' + world.other.id, 'draft=false', 'title=a&title=b', 'access_token=x', 'production=true', 'branch=main'].map(
          (q): [string, string, string, Buffer] => [token, 'POST', `${API}/sites/${site}/deploys?${q}`, raw('{}')],
        ),
        // update bodies
        ...['{"branch":"main"}', '{"production":true}', '{"functions":{"f":"' + 'a'.repeat(64) + '"}}', '{"files":{".netlify/internal/edge-functions/x.js":"' + 'a'.repeat(40) + '"}}',
          '{"files":{"/.netlify/deploy-config/x.json":"' + 'a'.repeat(40) + '"}}', '{"environment":[{"key":"A","value":"b"}]}', '{"edge_functions":{"x":1}}', '{"function_schedules":[{"name":"f","cron":"* * * * *"}]}',
          '{"files":{"../x":"' + 'a'.repeat(40) + '"}}', '{"site_id":"' + world.other.id + '"}', '{"published_at":"now"}', '{"locked":false}'].map(
          (b): [string, string, string, Buffer] => [token, 'PUT', `${API}/sites/${site}/deploys/${own}`, raw(b)],
        ),
        // paths and methods
        [token, 'GET', `${API}/sites/${site.toUpperCase()}`, undefined],
        [token, 'GET', `${API}/sites/${site}.`, undefined],
        [token, 'GET', `${API}/sites/${site};x=1`, undefined],
        [token, 'GET', `${API}/sites/${site}%00`, undefined],
        [token, 'GET', `${API}/sites/${site}?site_id=${world.other.id}`, undefined],
        [token, 'GET', `${API}/sites/${site}?access_token=x`, undefined],
        [token, 'HEAD', `${API}/sites/${site}`, undefined],
        [token, 'OPTIONS', `${API}/sites/${site}`, undefined],
        [token, 'DELETE', `${API}/sites/${site}`, undefined],
        [token, 'PATCH', `${API}/sites/${site}`, raw('{"password":null}')],
        [token, 'POST', `${API}/sites/${site}/deploys/${own}`, undefined, { 'x-http-method-override': 'DELETE' }],
        [token, 'DELETE', `${API}/deploys/${own}`, undefined],
        [token, 'DELETE', `${API}/sites/${site}/deploys/${own}`, undefined],
        [token, 'POST', `${API}/sites/${site}/deploys/${own}/restore`, undefined],
        [token, 'POST', `${API}/deploys/${own}/lock`, undefined],
        [token, 'POST', `${API}/deploys/${own}/unlock`, undefined],
        [token, 'POST', `${API}/deploys/${own}/publish`, undefined],
        [token, 'PUT', `${API}/sites/${site}/rollback`, undefined],
        [token, 'GET', `${API}/sites/${site}/deploys`, undefined],
        [token, 'GET', `${API}/sites/${site}/env`, undefined],
        [token, 'GET', `${API}/sites/${site}/build_hooks`, undefined],
        [token, 'GET', `${API}/sites/${site}/files`, undefined],
        [token, 'GET', `${API}/sites/${site}/snippets`, undefined],
        [token, 'POST', `${API}/sites/${site}/builds`, undefined],
        [token, 'GET', `${API}/sites`, undefined],
        [token, 'GET', `${API}/sites?filter=all`, undefined],
        [token, 'GET', `${API}/sites/${world.other.id}`, undefined],
        [token, 'GET', `${API}/accounts/acme/env/SECRET?site_id=${site}`, undefined],
        [token, 'GET', `${API}/accounts/acme/env?site_id=${world.other.id}`, undefined],
        [token, 'GET', `${API}/accounts/acme`, undefined],
        [token, 'GET', `${API}/user`, undefined],
        [token, 'PUT', `${API}/deploys/${own}/functions/f`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own}/edge_functions/${'a'.repeat(64)}`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own}/files/.netlify/internal/edge-functions/x.js`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own}/files/%2Enetlify/internal/edge-functions/x.js`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own}/files/%2enetlify%2finternal/x.js`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own}/files/a/%2e%2e/%2e%2e/%2e%2e/sites`, raw('x')],
        [token, 'PUT', `${API}/deploys/${own.toUpperCase()}/files/a.html`, raw('a')],
        [token, 'GET', `${API}/deploys/${prodDeploy}`, undefined],
        [token, 'PUT', `${API}/deploys/${prodDeploy}/files/a.html`, raw('a')],
        [token, 'POST', `${API}/deploys/${prodDeploy}/cancel`, undefined],
        [token, 'GET', `${API}/api/v1/sites/${world.other.id}/env`, undefined],
        // a production token of another site, on this site's deploys
        [blog, 'GET', `${API}/deploys/${own}`, undefined],
        [blog, 'POST', `${API}/sites/${site}/deploys`, raw('{}')],
        [blog, 'POST', `${API}/sites/${world.blog.id}/deploys/${prodDeploy}/restore`, undefined],
        [blog, 'POST', `${API}/sites/${site}/deploys/${prodDeploy}/restore`, undefined],
        // not a bearer of ours
        [`${token}x`, 'GET', `${API}/sites/${site}`, undefined],
        [await world.mintedAgo(3600, 600), 'GET', `${API}/sites/${site}`, undefined],
        ['', 'GET', `${API}/sites/${site}?access_token=${token}`, undefined],
      ];
      for (const [bearer, method, path, body, extra] of probes) {
        const headers: Record<string, string | number> = { 'content-type': 'application/json', ...(extra ?? {}) };
        if (bearer) headers.authorization = `Bearer ${bearer}`;
        if (body) headers['content-length'] = body.length;
        const res = await request(world.svc.url, method, path, headers, body);
        expect(res.status, `${method} ${path} ${body?.toString() ?? ''}: ${res.text}`).toBeGreaterThanOrEqual(400);
      }
      expect(world.standin.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    });

    it('sends a preview update as a draft whatever draft it carries, and the published deploy stays', async () => {
      const token = await world.token('preview');
      const published = world.docs.publishedDeployId;
      const created = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth(token), json({}));
      expect(created.status, created.text).toBe(200);
      const id = created.json().id as string;
      expect(created.json().draft).toBe(true);
      const flip = await request(world.svc.url, 'PUT', `${API}/sites/${world.docs.id}/deploys/${id}`, auth(token), json({ files: { 'b.html': sha1(Buffer.from('b')) }, draft: false }));
      expect(flip.status, flip.text).toBe(200);
      const seen = world.standin.requests.filter((r) => r.method !== 'GET' && r.path.includes(id)).map((r) => r.json);
      expect(JSON.stringify(seen)).not.toContain('"draft":false');
      const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${id}/files/b.html`, { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 1 }, Buffer.from('b'));
      expect(upload.status, upload.text).toBe(200);
      expect(world.docs.publishedDeployId).toBe(published);
    });
  });

  describe('a token revoked mid-deploy (its verification cached)', () => {
    it('is refused at its next step, before Netlify', async () => {
      const token = await world.token('preview');
      const id = await createDraft(world, token, { 'r.html': sha1(Buffer.from('r')) });
      expect((await postForm(`${world.svc.url}/revoke`, { token })).status).toBe(200);
      const before = world.standin.requests.length;
      const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${id}/files/r.html`, {
        authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 1,
      }, Buffer.from('r'));
      expect(upload.status, upload.text).toBe(401);
      expect(world.standin.requests.slice(before)).toEqual([]);
    });
  });

  it('never showed the stored credential in any answer, header or log line of the whole attack', () => {
    expect(seen.length).toBeGreaterThan(50);
    for (const text of seen) expect(text).not.toContain(world.standin.token);
    for (const line of world.svc.logs) expect(line).not.toContain(world.standin.token);
  });
});
