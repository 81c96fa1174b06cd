/**
 * A leaked preview token may create only a few deploys during its few minutes
 * (DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN): the next creation is refused in Netlify's error shape before it
 * reaches Netlify, says what would allow it, and is audited. Counted in the storage, atomically.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../exchange-service/config.js';
import { startGatewayWorld, rawRequest, reached, type GatewayWorld } from './support.js';

const API = '/gateway/netlify/api/v1';
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('the deploys one preview token may create (DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN=2)', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld({ env: { DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: '2' } });
  });
  afterAll(async () => {
    await world?.stop();
  });

  const create = (token: string, body: unknown = { draft: true }) =>
    rawRequest(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, json(body));
  const creations = () => reached(world, new RegExp(`^POST /api/v1/sites/${world.docs.id}/deploys$`)).length;

  it('creates two drafts; the third is refused in Netlify\'s shape before Netlify, saying how to get more', async () => {
    const token = await world.token('preview');
    for (let i = 0; i < 2; i++) expect((await create(token)).status).toBe(200);
    const before = creations();
    const third = await create(token);
    expect(third.status).toBe(403);
    expect(third.json()).toEqual({ code: 403, message: expect.stringContaining('has created 2 deploys, the most one preview token may') });
    expect(third.json().message).toContain('DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN');
    expect(third.json().message).toContain('run the deploy-sts Action again for a fresh token');
    expect(creations()).toBe(before);
    // The refusal is audited before its answer leaves.
    const refused = (await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs' })).find((r) => r.reason === 'preview_deploy_limit');
    expect(refused).toMatchObject({ result: 'refused', status: 403, route: 'deploy.create', context: 'preview', upstreamStatus: null });
  });

  it('lets the same token go on with the deploys it made: digests, uploads and polls are not creations', async () => {
    const token = await world.token('preview');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await create(token)).json().id as string);
    expect((await create(token)).status).toBe(403);
    const auth = { authorization: `Bearer ${token}` };
    const digests = await rawRequest(world.svc.url, 'PUT', `${API}/sites/${world.docs.id}/deploys/${ids[0]}`, { ...auth, 'content-type': 'application/json' }, json({ files: {} }));
    expect(digests.status, digests.text).toBe(200);
    expect((await rawRequest(world.svc.url, 'GET', `${API}/deploys/${ids[1]}`, auth)).status).toBe(200);
  });

  it('does not take a slot for a creation refused for its body', async () => {
    const token = await world.token('preview');
    expect((await create(token, { draft: false })).status).toBe(403);
    for (let i = 0; i < 2; i++) expect((await create(token)).status).toBe(200);
  });

  it('counts each token on its own, and never limits a production token', async () => {
    const first = await world.token('preview');
    for (let i = 0; i < 2; i++) expect((await create(first)).status).toBe(200);
    const second = await world.token('preview');
    expect((await create(second)).status).toBe(200);
    const production = await world.token('production');
    for (let i = 0; i < 4; i++) expect((await create(production, { draft: true })).status).toBe(200);
  });

  it('never lets concurrent creations with one token pass the limit together', async () => {
    const token = await world.token('preview');
    const before = creations();
    expect((await create(token)).status).toBe(200);
    // Two at once for the last slot (one token may have 2 JSON bodies in flight): exactly one gets it.
    const pair = await Promise.all([create(token), create(token)]);
    expect(pair.map((a) => a.status).sort()).toEqual([200, 403]);
    // A burst after that: refused by the limit (403) or, past the 2 JSON bodies in flight, told to wait (429).
    const burst = await Promise.all(Array.from({ length: 8 }, () => create(token)));
    expect(burst.every((a) => a.status === 403 || a.status === 429)).toBe(true);
    expect(creations() - before).toBe(2);
  });
});

describe('DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN', () => {
  const load = (value?: string) =>
    loadConfig({ DEPLOY_STS_POLICIES: 'examples/policies', ...(value === undefined ? {} : { DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: value }) });

  it('is 5 unless set, and 0 lifts the limit', () => {
    expect(load().gateway.previewDeploysPerToken).toBe(5);
    expect(load('0').gateway.previewDeploysPerToken).toBe(0);
  });

  it('refuses a value that is not a whole number from 0 to 1000, saying so', () => {
    for (const bad of ['-1', '2.5', 'many', '1001']) {
      let message = '';
      try {
        load(bad);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        message = error.message;
      }
      expect(message, bad).toMatch(/DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN \(--gateway-preview-deploys-per-token\)[\s\S]*from 0 to 1000/);
    }
  });
});
