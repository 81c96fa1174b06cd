/**
 * What a preview token can and cannot put into a deploy, end to end: the real `netlify` CLI through the gateway to
 * the Netlify stand-in. Functions run with the site's environment variables, so a preview may deploy them only when
 * the site's policy says `functions_in_previews: true`; a branch deploy (`--alias`) could overwrite another
 * preview's URL, so a preview token never makes one.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSiteDir, runNetlify, type NetlifyRun, type SiteDir } from '../helpers/netlify/cli.js';
import type { StandinDeploy } from '../helpers/netlify/standin.js';
import { reached, startGatewayWorld, type GatewayWorld } from './support.js';

const CLI_TIMEOUT = 120_000;
const FUNCTION = 'export default async () => new Response("hello from a function")\n';
const sites: SiteDir[] = [];

function siteWithFunction(): SiteDir {
  const dir = makeSiteDir({ files: { 'index.html': `<h1>${randomBytes(4).toString('hex')}</h1>` }, functions: { 'hello.mjs': FUNCTION } });
  sites.push(dir);
  return dir;
}

async function deploy(world: GatewayWorld, token: string, dir: SiteDir, ...extra: string[]): Promise<{ run: NetlifyRun; created?: StandinDeploy }> {
  const before = new Set(world.standin.deploysOf(world.docs.id).map((d) => d.id));
  const run = await runNetlify(['deploy', '--no-build', '--dir', dir.publishDir, '--site', 'acme-docs', ...extra], {
    apiUrl: world.apiUrl,
    token,
    cwd: dir.root,
  });
  return { run, created: world.standin.deploysOf(world.docs.id).find((d) => !before.has(d.id)) };
}

afterAll(() => {
  for (const dir of sites) dir.remove();
});

describe('a site whose policy keeps functions out of previews (the default)', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('refuses a preview with functions before any function reaches Netlify, and says how to allow it', { timeout: CLI_TIMEOUT }, async () => {
    const published = world.standin.published(world.docs.id)?.id;
    const dir = siteWithFunction();
    const { run, created } = await deploy(world, await world.token('preview'), dir, '--functions', dir.functionsDir);
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain('deploy-sts refused functions in a preview deploy of site "docs"');
    expect(run.output).toContain('functions_in_previews: true');
    // The draft was created, its digests never reached Netlify, and the CLI cancelled it.
    expect(created).toMatchObject({ draft: true, state: 'error', error_message: 'Canceled' });
    expect(created!.functions.size).toBe(0);
    expect(created!.functionUploads).toEqual([]);
    expect(reached(world, new RegExp(`^PUT .*/deploys/${created!.id}$`))).toEqual([]);
    expect(reached(world, /\/functions\//)).toEqual([]);
    expect(world.standin.published(world.docs.id)?.id).toBe(published);
    // The audit log has the refusal with its reason.
    const audit = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 100 });
    expect(audit).toContainEqual(
      expect.objectContaining({ route: 'deploy.update', deployId: created!.id, result: 'refused', reason: 'preview_functions', status: 403, upstreamStatus: null }),
    );
  });

  it('refuses a preview branch deploy (--alias): previews are drafts with their own URL', { timeout: CLI_TIMEOUT }, async () => {
    const creates = reached(world, /^POST .*\/deploys$/).length;
    const dir = makeSiteDir({ files: { 'index.html': '<h1>alias</h1>' } });
    sites.push(dir);
    const { run, created } = await deploy(world, await world.token('preview'), dir, '--alias', 'pr-7');
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain('deploy-sts refused a branch deploy (--alias pr-7) of site "docs"');
    expect(run.output).toContain('run netlify deploy without --alias or --prod');
    expect(created).toBeUndefined();
    expect(reached(world, /^POST .*\/deploys$/)).toHaveLength(creates);
    const [row] = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 1 });
    expect(row).toMatchObject({ route: 'deploy.create', result: 'refused', reason: 'preview_alias', context: 'preview' });
  });

  it('lets a production token deploy functions', { timeout: CLI_TIMEOUT }, async () => {
    const dir = siteWithFunction();
    const { run, created } = await deploy(world, await world.token('production'), dir, '--prod', '--functions', dir.functionsDir);
    expect(run.code, run.output).toBe(0);
    expect(created).toMatchObject({ draft: false, context: 'production', state: 'ready' });
    expect(created!.functionUploads.map((f) => f.path)).toEqual(['hello']);
    expect(world.standin.published(world.docs.id)?.id).toBe(created!.id);
  });
});

describe('a site whose policy sets functions_in_previews: true', () => {
  let world: GatewayWorld;
  beforeAll(async () => {
    world = await startGatewayWorld({ functionsInPreviews: true });
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('deploys a preview with functions, as a draft', { timeout: CLI_TIMEOUT }, async () => {
    const published = world.standin.published(world.docs.id)?.id;
    const dir = siteWithFunction();
    const { run, created } = await deploy(world, await world.token('preview'), dir, '--functions', dir.functionsDir);
    expect(run.code, run.output).toBe(0);
    expect(created).toMatchObject({ draft: true, branch: null, context: 'deploy-preview', state: 'ready' });
    expect(created!.functionUploads.map((f) => f.path)).toEqual(['hello']);
    // The digests that reached Netlify said draft, although the CLI sends draft: false at this step.
    const update = world.standin.requests.find((r) => r.method === 'PUT' && r.path.endsWith(`/deploys/${created!.id}`));
    expect(update?.json).toMatchObject({ draft: true, functions: { hello: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(world.standin.published(world.docs.id)?.id).toBe(published);
  });
});
