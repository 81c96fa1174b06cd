/**
 * The gateway core's promises, each checked against what the Netlify stand-in received: headers cross only by
 * allowlist (both ways), the client's Authorization never goes upstream, no redirect is followed, no path climbs out
 * of the API, bodies and time are bounded, and a missing credential is reported at start-up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/service.js';
import { docsSite, toYaml } from '../policy/fixtures.js';
import http from 'node:http';
import { CREDENTIAL, createDraft, startGatewayWorld, type Answer, type GatewayWorld, rawRequest } from './support.js';

const request = rawRequest;

const API = '/gateway/netlify/api/v1';
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

describe('the gateway core', () => {
  let world: GatewayWorld;
  let token: string;
  beforeAll(async () => {
    world = await startGatewayWorld({ env: { DEPLOY_STS_GATEWAY_MAX_BODY_BYTES: '2048' } });
    token = await world.token('preview');
  });
  afterAll(async () => {
    world.standin.intercept(undefined);
    await world?.stop();
  });

  describe('headers cross by allowlist only', () => {
    it('drops hop-by-hop, proxy, cookie, forwarding and unknown request headers, and the client\'s Authorization', async () => {
      const before = world.standin.requests.length;
      const res = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'user-agent': 'netlify-cli/27.10.2 test',
        connection: 'keep-alive, x-custom',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
        'proxy-connection': 'keep-alive',
        cookie: 'session=abc',
        forwarded: 'for=203.0.113.7',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-host': 'evil.example',
        'x-real-ip': '203.0.113.7',
        'x-custom': 'hello',
        'x-http-method-override': 'DELETE',
      });
      expect(res.status, res.text).toBe(200);
      const [seen, ...more] = world.standin.requests.slice(before);
      expect(more).toEqual([]);
      expect(seen!.method).toBe('GET');
      expect(seen!.headers.authorization).toBe(`Bearer ${world.standin.token}`);
      expect(seen!.headers.accept).toBe('application/json');
      expect(seen!.headers['user-agent']).toBe('netlify-cli/27.10.2 test');
      for (const name of ['cookie', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'upgrade', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip', 'x-custom', 'x-http-method-override']) {
        expect(seen!.headers[name], name).toBeUndefined();
      }
      expect(JSON.stringify(seen!.headers)).not.toContain(token);
    });

    it('drops Set-Cookie, Location and unknown response headers, on JSON answers and on streamed ones', async () => {
      const bogus = {
        'set-cookie': 'netlify=session; Path=/',
        location: 'https://app.netlify.com/elsewhere',
        'x-custom': 'upstream',
        'x-nf-request-id': 'abc',
        server: 'netlify',
        'strict-transport-security': 'max-age=1',
        'access-control-allow-origin': '*',
        'www-authenticate': 'Bearer realm="netlify"',
      };
      world.standin.intercept((req, res) => {
        if (req.method === 'GET' && req.url === `/api/v1/sites/${world.docs.id}`) {
          const body = JSON.stringify(world.standin.siteJson(world.docs));
          res.writeHead(200, { ...bogus, 'content-type': 'application/json', etag: '"v1"' }).end(body);
          return true;
        }
        if (req.method === 'PUT' && req.url?.includes('/files/')) {
          req.resume();
          req.on('end', () => res.writeHead(200, { ...bogus, 'content-type': 'application/json' }).end('{"id":"x"}'));
          return true;
        }
        return false;
      });
      try {
        const site = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
        const content = Buffer.from('<p>headers</p>');
        const deployId = await createDraft(world, token, { 'h.html': sha1(content) });
        const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${deployId}/files/h.html`, {
          authorization: `Bearer ${token}`,
          'content-type': 'application/octet-stream',
          'content-length': content.length,
        }, content);
        for (const res of [site, upload]) {
          expect(res.status, res.text).toBe(200);
          for (const name of Object.keys(bogus)) expect(res.headers[name], name).toBeUndefined();
          expect(res.headers['content-type']).toContain('application/json');
        }
        expect(site.headers.etag).toBe('"v1"');
        // And the site answer never carries the site's secrets.
        for (const secret of [world.docs.password, world.docs.deploy_hook, world.docs.hooks_access_token]) expect(site.text).not.toContain(secret);
      } finally {
        world.standin.intercept(undefined);
      }
    });
  });

  it('follows no redirect: the 302 reaches the client without its Location, the target gets nothing', async () => {
    let hits = 0;
    const elsewhere = http.createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/api/v1/sites/${world.docs.id}`;
    world.standin.intercept((req, res) => {
      res.writeHead(302, { location: target, 'content-type': 'text/plain' }).end('moved');
      req.resume();
      return true;
    });
    try {
      const res = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBeUndefined();
      expect(hits).toBe(0);
    } finally {
      world.standin.intercept(undefined);
      elsewhere.closeAllConnections();
      await new Promise((r) => elsewhere.close(r));
    }
  });

  it('lets no path climb out of the API: dot segments, encoded slashes and empty segments are refused before Netlify', async () => {
    const before = world.standin.requests.length;
    const bound = world.docs.id;
    const other = world.other.id;
    for (const path of [
      `${API}/sites/${bound}/../${other}`,
      `${API}/sites/${bound}/deploys/../../${other}`,
      `${API}/sites/${bound}/%2e%2e/${other}`,
      `${API}/sites/${bound}/%2E%2E/${other}`,
      `${API}/sites/${bound}%2f..%2f${other}`,
      `${API}/deploys/0123456789abcdef01234567/files/a%2f..%2f..%2fsites`,
      `${API}/deploys/0123456789abcdef01234567/files/a%5cb`,
      `${API}//sites/${bound}`,
      `${API}/sites//${bound}`,
      `${API}/sites/${bound}/`,
      `${API}/../api/v1/sites/${other}`,
    ]) {
      const res = await request(world.svc.url, 'GET', path, { authorization: `Bearer ${token}` });
      expect(res.status, path).toBe(400);
      expect(res.json(), path).toMatchObject({ code: 400, message: expect.stringContaining('deploy-sts refused') });
    }
    expect(world.standin.requests.slice(before)).toEqual([]);
  });

  describe('size limits (DEPLOY_STS_GATEWAY_MAX_BODY_BYTES=2048)', () => {
    const big = randomBytes(4096);

    it('refuses a declared 4 KB upload with 413 before anything reaches Netlify', async () => {
      const deployId = await createDraft(world, token, { 'big.bin': sha1(big) });
      const before = world.standin.requests.length;
      const res = await request(world.svc.url, 'PUT', `${API}/deploys/${deployId}/files/big.bin`, {
        authorization: `Bearer ${token}`,
        'content-type': 'application/octet-stream',
        'content-length': big.length,
      }, big);
      expect(res.status).toBe(413);
      expect(res.json()).toMatchObject({ code: 413, message: expect.stringContaining('DEPLOY_STS_GATEWAY_MAX_BODY_BYTES') });
      expect(world.standin.requests.slice(before)).toEqual([]);
      expect(world.standin.deploys.get(deployId)!.uploads).toEqual([]);
    });

    it('cuts a chunked upload off at the limit: 413, and Netlify never gets the file', async () => {
      const deployId = await createDraft(world, token, { 'chunked.bin': sha1(big) });
      const res = await request(
        world.svc.url,
        'PUT',
        `${API}/deploys/${deployId}/files/chunked.bin`,
        { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        [big.subarray(0, 1024), big.subarray(1024, 2048), big.subarray(2048, 3072), big.subarray(3072)],
      ).catch((error: Error) => ({ status: 0, text: error.message, headers: {}, json: () => ({}) }) as Answer);
      // The gateway answers 413 (or, having answered, closes the connection on the rest of the body).
      if (res.status !== 0) {
        expect(res.status).toBe(413);
        expect(res.json()).toMatchObject({ code: 413 });
      }
      const deploy = world.standin.deploys.get(deployId)!;
      expect(deploy.uploads).toEqual([]);
      const reachedBytes = world.standin.requests.filter((r) => r.path.endsWith('/files/chunked.bin')).map((r) => r.bodyBytes);
      for (const bytes of reachedBytes) expect(bytes).toBeLessThanOrEqual(2048);
    });
  });
});

describe('restoring an earlier deploy', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  /** A production deploy through the gateway, uploaded and published. */
  async function publish(token: string, content: string): Promise<string> {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const data = Buffer.from(content);
    const created = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth, Buffer.from(JSON.stringify({ draft: false })));
    expect(created.status, created.text).toBe(200);
    const id = created.json().id as string;
    const files = JSON.stringify({ files: { 'index.html': sha1(data) } });
    expect((await request(world.svc.url, 'PUT', `${API}/sites/${world.docs.id}/deploys/${id}`, auth, Buffer.from(files))).status).toBe(200);
    const upload = await request(world.svc.url, 'PUT', `${API}/deploys/${id}/files/index.html`, {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'content-length': data.length,
    }, data);
    expect(upload.status, upload.text).toBe(200);
    expect(world.standin.published(world.docs.id)?.id).toBe(id);
    return id;
  }

  it('a production token restores a deploy the gateway saw it create; previews and unknown deploys are refused before Netlify', async () => {
    const production = await world.token('production');
    const first = await publish(production, '<h1>first</h1>');
    const second = await publish(await world.token('production'), '<h1>second</h1>');
    expect(world.standin.published(world.docs.id)?.id).toBe(second);

    const restore = (token: string, id: string) =>
      request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys/${id}/restore`, { authorization: `Bearer ${token}` });
    const restored = await restore(production, first);
    expect(restored.status, restored.text).toBe(201);
    expect(restored.json()).toMatchObject({ id: first, state: 'ready' });
    expect(world.standin.published(world.docs.id)?.id).toBe(first);

    const before = world.standin.requests.length;
    const byPreview = await restore(await world.token('preview'), second);
    expect(byPreview.status).toBe(403);
    expect(byPreview.json().message).toContain('restoring publishes to production');

    // A deploy made on Netlify directly (not through the gateway) cannot be named by a deploy token.
    const direct = await fetch(`${world.standin.apiUrl}/sites/${world.docs.id}/deploys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${world.standin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ draft: false }),
    });
    const directId = ((await direct.json()) as { id: string }).id;
    const afterDirect = world.standin.requests.length;
    const unknown = await restore(production, directId);
    expect(unknown.status).toBe(404);
    expect(unknown.json().message).toContain('not created through deploy-sts');
    expect(world.standin.requests.length).toBe(afterDirect);
    expect(world.standin.requests.slice(before, afterDirect - 1)).toEqual([]);
    expect(world.standin.published(world.docs.id)?.id).toBe(first);
  });
});

describe('time limit (DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS=1)', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld({ env: { DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS: '1' } });
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('answers 504 in Netlify\'s shape when Netlify stalls', async () => {
    const token = await world.token('preview');
    world.standin.intercept(() => true); // never answers
    const started = Date.now();
    const res = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
    world.standin.intercept(undefined);
    expect(res.status).toBe(504);
    expect(res.json()).toMatchObject({ code: 504, message: expect.stringContaining('DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});

describe('a credential the policy names but the store lacks', () => {
  it('passes `deploy-sts policy check` (offline), and `serve` warns at start-up with the command that fixes it', async () => {
    const dir = tempDir('deploy-sts-policy-');
    try {
      mkdirSync(join(dir, 'policies'));
      const upstream = { netlify: { site_id: '3970e0fe-8564-4903-9a55-c5f8de49fb8b', credential: CREDENTIAL } };
      writeFileSync(join(dir, 'policies', 'docs.yml'), toYaml(docsSite({ upstream })));
      const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'build/exchange-service/cli.js'), 'policy', 'check', join(dir, 'policies')], {
        env: { PATH: process.env.PATH ?? '' },
        timeout: 30_000,
      });
      expect(stdout).toMatch(/^ok: 1 policy file \(1 site/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const world = await startGatewayWorld({ storeCredential: false });
    try {
      const warning = world.svc.logs.find((line) => line.includes(`credential ${CREDENTIAL}`));
      expect(warning).toBeDefined();
      expect(warning).toContain(`deploy-sts credentials set ${CREDENTIAL}`);
    } finally {
      await world.stop();
    }
  });
});

describe('a token the gateway has already verified', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('is refused at its next request once the key that signed it has left the key ring', async () => {
    const token = await world.token('preview');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const first = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth, Buffer.from(JSON.stringify({ draft: true })));
    expect(first.status, first.text).toBe(200);
    // The key is dropped from the store (as when an operator removes a compromised key) and the ring re-reads it.
    const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')).kid as string;
    rmSync(join(world.svc.dataDir, 'keys', `${kid}.json`));
    await world.svc.service.keys.reload();
    const before = world.standin.requests.length;
    const again = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth, Buffer.from(JSON.stringify({ draft: true })));
    expect(again.status, again.text).toBe(401);
    expect(again.json()).toMatchObject({ code: 401, message: expect.stringContaining(kid) });
    expect(world.standin.requests.slice(before)).toEqual([]);
  });
});
