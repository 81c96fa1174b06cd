/**
 * The deploy gateway on two replicas sharing one PostgreSQL database (one public URL, as behind a load balancer):
 * the credential stored through one is used by the other, a deploy created through one replica is uploaded and
 * polled through the other, and both write the one gateway audit log.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialStore } from '../../exchange-service/credentials/store.js';
import { readKeyEncryptionKey } from '../../exchange-service/keys/key-encryption.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { startNetlifyStandin, type NetlifyStandin, type StandinSite } from '../helpers/netlify/standin.js';
import { SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';
import { exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';
import { docsSite, toYaml } from '../policy/fixtures.js';
import { NO_RATE_LIMITS } from '../security/support.js';

describe.skipIf(SKIP_POSTGRES)('the deploy gateway on replicas sharing PostgreSQL', () => {
  let pg: TestPostgres;
  let issuer: TestIssuer;
  let standin: NetlifyStandin;
  let site: StandinSite;
  let dir: string;
  const replicas: TestService[] = [];
  /** Where each replica really listens (they share the public URL). */
  const address = (i: number) => `http://127.0.0.1:${replicas[i]!.service.port}`;
  const api = (i: number) => `${address(i)}/gateway/netlify/api/v1`;

  beforeAll(async () => {
    issuer = await startIssuer();
    pg = await startPostgres();
    standin = await startNetlifyStandin();
    site = standin.addSite({ name: 'acme-docs' });
    dir = tempDir('deploy-sts-gateway-pg-');
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'docs.yml'), toYaml(docsSite({ upstream: { netlify: { site_id: site.id, credential: 'netlify-acme' } } })));
    const kek = join(dir, 'kek');
    writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
    const databaseUrl = await pg.createDatabase();
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startService({
          issuer: issuer.url,
          policies: join(dir, 'policies'),
          env: {
            ...NO_RATE_LIMITS,
            DEPLOY_STS_PUBLIC_URL: 'http://127.0.0.1:8443',
            DEPLOY_STS_DATABASE_URL: databaseUrl,
            DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek,
            DEPLOY_STS_NETLIFY_API_URL: standin.apiUrl,
            DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: '1',
          },
        }),
      );
    }
    // Stored through replica 0 only.
    await credentialStore(replicas[0]!.service.storage.gateway, await readKeyEncryptionKey(kek)).set('netlify-acme', standin.token);
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) await r.stop();
    await standin?.close();
    await pg?.stop();
    await issuer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates a deploy through one replica and uploads and polls it through the other', async () => {
    const exchanged = await exchangeToken(address(0), await issuer.token({ event_name: 'pull_request_target', environment: undefined }));
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    const auth = { authorization: `Bearer ${String(exchanged.body.access_token)}` };
    const json = { ...auth, 'content-type': 'application/json' };

    const created = await fetch(`${api(0)}/sites/${site.id}/deploys`, { method: 'POST', headers: json, body: JSON.stringify({ draft: true }) });
    expect(created.status).toBe(200);
    const deployId = ((await created.json()) as { id: string }).id;

    const content = Buffer.from('<h1>served by two replicas</h1>');
    const sha = createHash('sha1').update(content).digest('hex');
    const digests = await fetch(`${api(1)}/sites/${site.id}/deploys/${deployId}`, {
      method: 'PUT',
      headers: json,
      body: JSON.stringify({ files: { '/index.html': sha }, draft: false, async: false }),
    });
    expect(digests.status, await digests.clone().text()).toBe(200);
    expect(((await digests.json()) as { required: string[] }).required).toEqual([sha]);

    const upload = await fetch(`${api(1)}/deploys/${deployId}/files/index.html`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: content,
    });
    expect(upload.status).toBe(200);

    const polled = await fetch(`${api(0)}/deploys/${deployId}`, { headers: auth });
    expect(polled.status).toBe(200);
    expect(await polled.json()).toMatchObject({ id: deployId, state: 'ready' });
    expect(standin.deploys.get(deployId)).toMatchObject({ draft: true, context: 'deploy-preview' });
    expect(standin.published(site.id)).toBeUndefined();

    // One audit log: the create from replica 0, the upload from replica 1, seen from either. A call's audit row is
    // written once its answer has gone, so the last one may still be on its way: wait for it (bounded).
    const routes = async () =>
      (await replicas[1]!.service.storage.gateway.listGatewayAudit({ site: 'docs' })).filter((r) => r.deployId === deployId).map((r) => r.route).sort();
    const expected = ['deploy.create', 'deploy.get-by-id', 'deploy.update', 'deploy.upload-file'].sort();
    for (let i = 0; i < 50 && JSON.stringify(await routes()) !== JSON.stringify(expected); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await routes()).toEqual(expected);
    const credentials = await replicas[1]!.service.storage.gateway.listCredentials();
    expect(credentials).toMatchObject([{ name: 'netlify-acme', encryption: 'aes-256-gcm' }]);
    expect(credentials[0]!.lastUsedAt).not.toBeNull();
  });

  it("shares a preview token's deploy count (DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN=1): the other replica refuses its next creation", async () => {
    const creations = () => standin.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/sites/${site.id}/deploys`).length;
    const preview = async () => {
      const exchanged = await exchangeToken(address(0), await issuer.token({ event_name: 'pull_request_target', environment: undefined }));
      expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
      return { authorization: `Bearer ${String(exchanged.body.access_token)}`, 'content-type': 'application/json' };
    };
    const create = (i: number, headers: Record<string, string>) =>
      fetch(`${api(i)}/sites/${site.id}/deploys`, { method: 'POST', headers, body: JSON.stringify({ draft: true }) });

    const one = await preview();
    expect((await create(0, one)).status).toBe(200);
    const before = creations();
    const refused = await create(1, one);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { message: string }).message).toMatch(/has created 1 deploy, the most one preview token may/);
    expect(creations()).toBe(before);

    // Concurrent creations with one token, spread over both replicas: one reaches Netlify.
    const two = await preview();
    const statuses = (await Promise.all(Array.from({ length: 6 }, (_, i) => create(i % 2, two)))).map((r) => r.status);
    // One succeeds; the others are refused by the shared count (403) or, past the 2 JSON bodies one token may have in
    // flight on a replica, told to wait (429).
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 403 || s === 429)).toBe(true);
    expect(statuses.filter((s) => s === 403).length).toBeGreaterThanOrEqual(3);
    expect(creations()).toBe(before + 1);
  });

  it('refuses, on either replica, a deploy id it never saw created', async () => {
    const exchanged = await exchangeToken(address(1), await issuer.token());
    const auth = { authorization: `Bearer ${String(exchanged.body.access_token)}` };
    const before = standin.requests.length;
    for (const i of [0, 1]) {
      const res = await fetch(`${api(i)}/deploys/0123456789abcdef01234567`, { headers: auth });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { message: string }).message).toMatch(/not created through deploy-sts for site docs/);
    }
    expect(standin.requests.length).toBe(before);
  });
});
