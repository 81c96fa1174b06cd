/**
 * The deploy gateway on two replicas sharing one PostgreSQL database (one public URL, as behind a load balancer):
 * the credential stored through one is used by the other, a deploy created through one replica is uploaded and
 * polled through the other, and both write the one gateway audit log.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestIssuer } from '../helpers/issuer.js';
import { type NetlifyStandin, type StandinSite } from '../helpers/netlify/standin.js';
import { SKIP_POSTGRES } from '../../testing/postgres.js';
import { exchangeToken, type TestService } from '../helpers/service.js';
import { startGatewayReplicas, type GatewayReplicas } from '../gateway/support.js';

describe.skipIf(SKIP_POSTGRES)('the deploy gateway on replicas sharing PostgreSQL', () => {
  let world: GatewayReplicas;
  let issuer: TestIssuer;
  let standin: NetlifyStandin;
  let site: StandinSite;
  let replicas: TestService[];
  /** Where each replica really listens (they share the public URL). */
  const address = (i: number) => world.address(i);
  const api = (i: number) => `${address(i)}/gateway/netlify/api/v1`;

  beforeAll(async () => {
    // The credential is stored through replica 0 only.
    world = await startGatewayReplicas({ DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: '1' });
    ({ issuer, standin, site, replicas } = world);
  }, 120_000);

  afterAll(async () => {
    await world?.stop();
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
