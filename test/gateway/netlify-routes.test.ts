/**
 * The Netlify route allowlist and body rules, as pure functions: every route a deploy needs, and every refusal with
 * the reason and message the person who can fix it sees.
 */
import { describe, expect, it } from 'vitest';
import type { Forward } from '../../exchange-service/gateway/platform.js';
import {
  rewriteCreateDeploy,
  rewriteUpdateDeploy,
  sanitizeSite,
  siteLookupAnswer,
  type BodyRules,
} from '../../exchange-service/gateway/netlify/bodies.js';
import { grants, planNetlifyRequest, type NetlifyBinding, type NetlifyPlan, type NetlifyToken } from '../../exchange-service/gateway/netlify/routes.js';

const SITE = '3970e0fe-8564-4903-9a55-c5f8de49fb8b';
const OTHER = '0b5e6a57-1f0c-4d3a-9a1e-2f6c4b1d9e11';
const DEPLOY = '63c5ae186108e98018949d89';
const SHA1 = 'eb49199fcc08a347035605d1d2d52736449f187a';
const SHA256 = 'ae176659ffb3eea4c674960df44c649249267677c028b62918d0143e6556fa68';

const production: NetlifyToken = { context: 'production', scope: 'deployments:write' };
const preview: NetlifyToken = { context: 'preview', scope: 'deployments:write' };
const binding: NetlifyBinding = { upstreamSiteId: SITE, functionsInPreviews: false, site: 'docs' };
const withFunctions: NetlifyBinding = { ...binding, functionsInPreviews: true };

function plan(method: string, target: string, token: NetlifyToken = production, bound: NetlifyBinding = binding): NetlifyPlan {
  const q = target.indexOf('?');
  return planNetlifyRequest(
    { method, path: q === -1 ? target : target.slice(0, q), query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)), contentType: '' },
    token,
    bound,
  );
}

function forwarded(p: NetlifyPlan): Forward {
  if (p.kind !== 'forward') throw new Error(`expected a forward, got ${JSON.stringify(p)}`);
  return p;
}

function refused(p: NetlifyPlan) {
  if (p.kind !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(p)}`);
  return p;
}

describe('what netlify deploy needs is forwarded', () => {
  it('reads the bound site, without its secrets', () => {
    const f = forwarded(plan('GET', `/sites/${SITE}?feature_flags=cli`, preview));
    expect(f).toMatchObject({ route: 'site.get', upstreamPath: `/sites/${SITE}`, body: 'none', scope: 'deployments:read' });
    expect(f.upstreamQuery.toString()).toBe('feature_flags=cli');
    const answer = f.respond!(200, {
      id: SITE,
      name: 'docs',
      password: 'pw',
      deploy_hook: 'https://api.netlify.com/build_hooks/x',
      default_hooks_data: { access_token: 'hook-token' },
      notification_email: 'a@b.c',
      use_envelope: true,
      build_settings: { dir: 'build', env: { SECRET: 'v' }, repo_url: 'x' },
      published_deploy: { id: DEPLOY, state: 'ready', skew_protection_token: 'skew' },
    });
    expect(answer).toEqual({
      status: 200,
      body: { id: SITE, name: 'docs', build_settings: { dir: 'build' }, published_deploy: { id: DEPLOY, state: 'ready' } },
    });
  });

  it('answers the look-up by name from the bound site only', () => {
    const f = forwarded(plan('GET', '/sites?name=docs&filter=all', preview));
    expect(f).toMatchObject({ route: 'sites.find-by-name', upstreamPath: `/sites/${SITE}`, body: 'none' });
    expect(f.upstreamQuery.toString()).toBe('');
    expect(f.respond!(200, { id: SITE, name: 'docs', password: 'pw' })).toEqual({ status: 200, body: [{ id: SITE, name: 'docs' }] });
    expect(f.respond!(200, { id: SITE, name: 'docs-old' })).toEqual({ status: 200, body: [] });
    expect(f.respond!(404, { code: 404, message: 'Not Found' })).toEqual({ status: 200, body: [] });
    expect(f.respond!(401, { code: 401, message: 'Access Denied', extra: 'x' })).toEqual({ status: 401, body: { code: 401, message: 'Access Denied' } });
  });

  it('answers the accounts list and environment variable reads itself, with nothing', () => {
    expect(plan('GET', '/accounts?minimal=true', preview)).toEqual({ kind: 'answer', route: 'accounts.list', status: 200, body: [] });
    expect(plan('GET', '/accounts/acme/env', preview)).toEqual({ kind: 'answer', route: 'env.list', status: 200, body: [] });
    expect(plan('GET', `/accounts/acme/env?site_id=${SITE}`, preview)).toMatchObject({ kind: 'answer', body: [] });
    expect(plan('GET', `/accounts/acme/env?site_id=${SITE}&context_name=production&scope=functions`)).toMatchObject({ kind: 'answer', body: [] });
    expect(plan('GET', `/api/v1/sites/${SITE}/env`)).toMatchObject({ kind: 'answer', route: 'env.list', body: [] });
  });

  it('creates a deploy of the bound site and records it', () => {
    const f = forwarded(plan('POST', `/sites/${SITE}/deploys?title=fix%20typo`, preview));
    expect(f).toMatchObject({ route: 'deploy.create', upstreamPath: `/sites/${SITE}/deploys`, body: 'json', createsDeploy: true, scope: 'deployments:write' });
    expect(f.upstreamQuery.get('title')).toBe('fix typo');
    expect(f.rewrite!({ draft: true, include_upload_url: false, deploy_source: 'cli' })).toEqual({ ok: true, body: { draft: true, deploy_source: 'cli' } });
    expect(f.respond!(200, { id: DEPLOY, state: 'new', source_zip_upload_url: 'https://s3/x', skew_protection_token: 't' })).toEqual({
      status: 200,
      body: { id: DEPLOY, state: 'new' },
    });
  });

  it('sends digests, polls, uploads and cancels only deploys the gateway recorded', () => {
    const update = forwarded(plan('PUT', `/sites/${SITE}/deploys/${DEPLOY}`, preview));
    expect(update).toMatchObject({ route: 'deploy.update', deployId: DEPLOY, deployCheck: 'recorded', body: 'json', scope: 'deployments:write' });
    expect(forwarded(plan('GET', `/sites/${SITE}/deploys/${DEPLOY}`, preview))).toMatchObject({
      route: 'deploy.get',
      deployId: DEPLOY,
      deployCheck: 'recorded',
      body: 'none',
      scope: 'deployments:read',
    });
    expect(forwarded(plan('GET', `/deploys/${DEPLOY}`, preview))).toMatchObject({ route: 'deploy.get-by-id', upstreamPath: `/deploys/${DEPLOY}`, deployId: DEPLOY });
    expect(forwarded(plan('POST', `/deploys/${DEPLOY}/cancel`, preview))).toMatchObject({ route: 'deploy.cancel', deployId: DEPLOY, scope: 'deployments:write' });
    const upload = forwarded(plan('PUT', `/deploys/${DEPLOY}/files/css/site%20main.css?size=12`, preview));
    expect(upload).toMatchObject({ route: 'deploy.upload-file', upstreamPath: `/deploys/${DEPLOY}/files/css/site%20main.css`, body: 'stream', deployId: DEPLOY });
    expect(upload.upstreamQuery.get('size')).toBe('12');
  });

  it('uploads functions for production tokens, and for previews only where the policy allows them', () => {
    const target = `/deploys/${DEPLOY}/functions/hello?runtime=nodejs24.x&invocation_mode=stream`;
    const f = forwarded(plan('PUT', target, production));
    expect(f).toMatchObject({ route: 'deploy.upload-function', upstreamPath: `/deploys/${DEPLOY}/functions/hello`, body: 'stream', deployId: DEPLOY });
    expect(f.upstreamQuery.toString()).toBe('runtime=nodejs24.x&invocation_mode=stream');
    expect(forwarded(plan('PUT', target, preview, withFunctions)).route).toBe('deploy.upload-function');
    const r = refused(plan('PUT', target, preview));
    expect(r).toMatchObject({ status: 403, reason: 'preview_functions' });
    expect(r.message).toContain('functions_in_previews: true');
    expect(refused(plan('PUT', `/deploys/${DEPLOY}/edge_functions/${SHA256}`, preview)).reason).toBe('preview_functions');
    // Edge functions, framework config and database migrations also travel as files under .netlify/.
    const edge = `/deploys/${DEPLOY}/files/.netlify/internal/edge-functions/bundle.eszip`;
    expect(refused(plan('PUT', edge, preview))).toMatchObject({ status: 403, reason: 'preview_functions' });
    expect(forwarded(plan('PUT', edge, preview, withFunctions)).route).toBe('deploy.upload-file');
    expect(forwarded(plan('PUT', edge, production)).route).toBe('deploy.upload-file');
    expect(forwarded(plan('PUT', `/deploys/${DEPLOY}/files/netlify-logo.svg`, preview)).route).toBe('deploy.upload-file');
    expect(forwarded(plan('PUT', `/deploys/${DEPLOY}/edge_functions/${SHA256}`)).route).toBe('deploy.upload-edge-function');
    expect(forwarded(plan('PUT', `/deploys/${DEPLOY}/server/${SHA256}`)).route).toBe('deploy.upload-server');
  });

  it('lets production tokens restore a deploy they made; preview tokens never', () => {
    expect(forwarded(plan('POST', `/sites/${SITE}/deploys/${DEPLOY}/restore`))).toMatchObject({
      route: 'deploy.restore',
      deployId: DEPLOY,
      deployCheck: 'recorded',
      scope: 'deployments:write',
    });
    const r = refused(plan('POST', `/sites/${SITE}/deploys/${DEPLOY}/restore`, preview));
    expect(r).toMatchObject({ status: 403, reason: 'production_only' });
    expect(r.message).toContain('only a token from a production rule');
  });
});

describe('everything else is refused before it reaches Netlify', () => {
  const cases: [string, string, string, string][] = [
    ['DELETE', `/sites/${SITE}`, 'route_not_allowed', 'deleteSite'],
    ['PATCH', `/sites/${SITE}`, 'route_not_allowed', 'updateSite'],
    ['PUT', `/sites/${SITE}`, 'route_not_allowed', 'updateSite'],
    ['OPTIONS', `/sites/${SITE}`, 'route_not_allowed', 'create, upload, poll and cancel'],
    ['POST', '/sites', 'route_not_allowed', 'createSite'],
    ['GET', '/sites', 'route_not_allowed', 'listSites'],
    ['GET', '/sites?filter=all', 'route_not_allowed', 'listSites'],
    ['GET', `/sites/${SITE}/deploys`, 'route_not_allowed', 'listSiteDeploys'],
    ['DELETE', `/sites/${SITE}/deploys/${DEPLOY}`, 'route_not_allowed', 'deleteSiteDeploy'],
    ['DELETE', `/deploys/${DEPLOY}`, 'route_not_allowed', 'deleteDeploy'],
    ['POST', `/deploys/${DEPLOY}/lock`, 'route_not_allowed', 'lockDeploy'],
    ['POST', `/deploys/${DEPLOY}/unlock`, 'route_not_allowed', 'unlockDeploy'],
    ['PUT', `/sites/${SITE}/rollback`, 'route_not_allowed', 'rollbackSiteDeploy'],
    ['POST', `/sites/${SITE}/builds`, 'route_not_allowed', 'site settings'],
    ['GET', `/sites/${SITE}/build_hooks`, 'route_not_allowed', 'hooks'],
    ['POST', `/sites/${SITE}/build_hooks`, 'route_not_allowed', 'hooks'],
    ['GET', `/sites/${SITE}/dns`, 'route_not_allowed', 'domains'],
    ['POST', `/sites/${SITE}/ssl`, 'route_not_allowed', 'site settings'],
    ['GET', `/sites/${SITE}/env`, 'route_not_allowed', 'environment variables'],
    ['GET', `/sites/${SITE}/forms`, 'route_not_allowed', 'forms'],
    ['POST', `/sites/${SITE}/deploys/${DEPLOY}/cancel`, 'route_not_allowed', 'create, upload, poll and cancel'],
    ['PATCH', `/deploys/${DEPLOY}/validations_report`, 'route_not_allowed', 'create, upload, poll and cancel'],
    ['POST', `/deploys/${DEPLOY}/plugin_runs`, 'route_not_allowed', 'create, upload, poll and cancel'],
    ['GET', `/deploys/${DEPLOY}/files/index.html`, 'route_not_allowed', 'create, upload, poll and cancel'],
    ['GET', '/user', 'route_not_allowed', 'getCurrentUser'],
    ['GET', '/accounts/acme', 'route_not_allowed', 'account'],
    ['GET', '/acme/members', 'route_not_allowed', 'create, upload, poll and cancel'],
    ['POST', '/acme/sites', 'route_not_allowed', 'create, upload, poll and cancel'],
    ['GET', '/deploy_keys', 'route_not_allowed', 'create, upload, poll and cancel'],
    ['GET', '/hooks', 'route_not_allowed', 'create, upload, poll and cancel'],
    ['GET', '/accounts/acme/env/SECRET_KEY', 'env_value', 'never readable'],
    ['POST', '/accounts/acme/env', 'env_value', 'never readable or writable'],
    ['PATCH', '/accounts/acme/env/SECRET_KEY', 'env_value', 'never readable or writable'],
    ['DELETE', '/accounts/acme/env/SECRET_KEY', 'env_value', 'never readable or writable'],
    ['POST', `/api/v1/sites/${SITE}/env`, 'route_not_allowed', 'never writable'],
  ];
  for (const [method, target, reason, words] of cases) {
    it(`${method} ${target.replace(SITE, '{site}').replace(DEPLOY, '{deploy}')}`, () => {
      const r = refused(plan(method, target));
      expect(r.reason).toBe(reason);
      expect(r.status).toBe(403);
      expect(r.message).toContain(words);
      expect(r.message).toContain('deploy-sts refused');
      expect(r.message).toContain('site "docs"');
    });
  }

  it('another site, by id, anywhere in the path or query', () => {
    for (const [method, target] of [
      ['GET', `/sites/${OTHER}`],
      ['POST', `/sites/${OTHER}/deploys`],
      ['PUT', `/sites/${OTHER}/deploys/${DEPLOY}`],
      ['GET', `/sites/${OTHER}/deploys/${DEPLOY}`],
      ['POST', `/sites/${OTHER}/deploys/${DEPLOY}/restore`],
      ['DELETE', `/sites/${OTHER}`],
      ['GET', `/accounts/acme/env?site_id=${OTHER}`],
      ['GET', `/api/v1/sites/${OTHER}/env`],
    ] as const) {
      const r = refused(plan(method, target));
      expect(r, `${method} ${target}`).toMatchObject({ status: 403, reason: 'other_site' });
      expect(r.message).toContain(`not Netlify site ${OTHER}`);
    }
  });

  it('a site named instead of its id gets Netlify\'s own 404, so the CLI looks it up by name', () => {
    const r = refused(plan('GET', '/sites/docs?feature_flags=cli', preview));
    expect(r).toMatchObject({ kind: 'refuse', route: 'site.not-found', status: 404, reason: 'site_by_name' });
    expect(r.message).toMatch(/^Not Found: /);
    expect(r.message).toContain('this token deploys site "docs"');
    expect(refused(plan('POST', '/sites/docs/deploys')).reason).toBe('site_by_name');
  });

  it('malformed ids', () => {
    expect(refused(plan('GET', `/sites/${SITE.toUpperCase()}`))).toMatchObject({ status: 400, reason: 'invalid_id' });
    for (const id of ['63c5ae186108e98018949d8', '63c5ae186108e98018949d89a', '63C5AE186108E98018949D89', 'zzc5ae186108e98018949d89']) {
      expect(refused(plan('GET', `/deploys/${id}`))).toMatchObject({ status: 400, reason: 'invalid_id' });
      expect(refused(plan('PUT', `/sites/${SITE}/deploys/${id}`))).toMatchObject({ status: 400, reason: 'invalid_id' });
    }
    expect(refused(plan('PUT', `/deploys/${DEPLOY}/functions/..hello`))).toMatchObject({ status: 400, reason: 'invalid_path' });
    expect(refused(plan('PUT', `/deploys/${DEPLOY}/edge_functions/not-a-sha`))).toMatchObject({ status: 400, reason: 'invalid_path' });
  });

  it('path tricks: dot segments, encoded slashes, double slashes, control characters', () => {
    for (const target of [
      `/sites/${SITE}/deploys/../../sites/${OTHER}`,
      `/sites/${SITE}/%2e%2e/${OTHER}`,
      `/deploys/${DEPLOY}/files/../../sites/${OTHER}`,
      `/deploys/${DEPLOY}/files/a/%2e%2e/b`,
      `/deploys/${DEPLOY}/files/a%2fb`,
      `/deploys/${DEPLOY}/files/a%5Cb`,
      `/deploys/${DEPLOY}/files//etc/passwd`,
      `/deploys/${DEPLOY}/files/a%00b`,
      `/deploys/${DEPLOY}/files/a%0ab`,
      `/deploys/${DEPLOY}/files/%E0%A4%A`,
      `//sites/${SITE}`,
      `/sites/${SITE}/`,
      `sites/${SITE}`,
    ]) {
      expect(refused(plan('PUT', target)), target).toMatchObject({ status: 400, reason: 'invalid_path' });
    }
  });

  it('unknown or repeated query parameters', () => {
    expect(refused(plan('GET', `/sites/${SITE}?include=password`))).toMatchObject({ status: 400, reason: 'query_not_allowed' });
    expect(refused(plan('POST', `/sites/${SITE}/deploys?title=a&title=b`))).toMatchObject({ reason: 'query_not_allowed' });
    expect(refused(plan('PUT', `/sites/${SITE}/deploys/${DEPLOY}?commit_ref=abc`)).reason).toBe('query_not_allowed');
    expect(refused(plan('PUT', `/deploys/${DEPLOY}/files/a.html?size=-1`)).reason).toBe('query_not_allowed');
    expect(refused(plan('GET', '/sites?name=docs&filter=everything')).reason).toBe('query_not_allowed');
    const r = refused(plan('PUT', `/deploys/${DEPLOY}/functions/hello?runtime=nodejs24.x&region=eu`));
    expect(r.message).toContain('"region" is not forwarded (allowed: runtime, invocation_mode, timeout, size)');
  });

  it('a token without deployments:write only reads', () => {
    const reader: NetlifyToken = { context: 'production', scope: 'deployments:read' };
    expect(forwarded(plan('GET', `/sites/${SITE}`, reader)).route).toBe('site.get');
    expect(forwarded(plan('GET', `/sites/${SITE}/deploys/${DEPLOY}`, reader)).route).toBe('deploy.get');
    const r = refused(plan('POST', `/sites/${SITE}/deploys`, reader));
    expect(r).toMatchObject({ status: 403, reason: 'missing_scope' });
    expect(r.message).toContain("do not include deployments:write; grant it in the site's policy rule");
    expect(refused(plan('PUT', `/deploys/${DEPLOY}/files/a.html`, reader)).reason).toBe('missing_scope');
    const nothing: NetlifyToken = { context: 'production', scope: 'sites:read' };
    expect(refused(plan('GET', `/sites/${SITE}`, nothing)).reason).toBe('missing_scope');
    expect(refused(plan('GET', '/accounts', nothing)).reason).toBe('missing_scope');
  });

  it('write implies read, never the other way', () => {
    expect(grants('deployments:write', 'deployments:read')).toBe(true);
    expect(grants('deployments:read', 'deployments:write')).toBe(false);
    expect(grants('domains:write', 'deployments:read')).toBe(false);
    expect(grants('', 'deployments:read')).toBe(false);
  });
});

describe('deploy bodies', () => {
  const previewRules: BodyRules = { context: 'preview', upstreamSiteId: SITE, site: 'docs', functionsInPreviews: false };
  const productionRules: BodyRules = { ...previewRules, context: 'production' };

  describe('create (POST /sites/{site}/deploys)', () => {
    it('a preview draft goes through as a draft', () => {
      expect(rewriteCreateDeploy({ draft: true, include_upload_url: false, deploy_source: 'cli' }, previewRules)).toEqual({
        ok: true,
        body: { draft: true, deploy_source: 'cli' },
      });
      // Netlify's default for an absent draft is production: a preview body always says draft.
      expect(rewriteCreateDeploy({}, previewRules)).toEqual({ ok: true, body: { draft: true } });
    });

    it('a preview token with --prod is refused with the fix', () => {
      const r = rewriteCreateDeploy({ draft: false, include_upload_url: false, deploy_source: 'cli' }, previewRules);
      expect(r).toEqual({
        ok: false,
        reason: 'preview_publish',
        status: 403,
        message:
          'deploy-sts refused a production deploy of site "docs" (Netlify site 3970e0fe-8564-4903-9a55-c5f8de49fb8b) with a preview token: preview tokens create draft deploys only: run netlify deploy without --prod',
      });
    });

    it('a preview token with --alias is refused (a branch deploy could overwrite another preview)', () => {
      const r = rewriteCreateDeploy({ draft: false, branch: 'pr-7', deploy_source: 'cli' }, previewRules);
      expect(r).toMatchObject({ ok: false, reason: 'preview_alias', status: 403 });
      if (!r.ok) expect(r.message).toContain('run netlify deploy without --alias or --prod');
      expect(rewriteCreateDeploy({ draft: true, branch: 'pr-7' }, previewRules)).toMatchObject({ ok: false, reason: 'preview_alias' });
      expect(rewriteCreateDeploy({ draft: true, branch: '' }, previewRules)).toEqual({ ok: true, body: { draft: true } });
    });

    it('a production token publishes and makes branch deploys', () => {
      expect(rewriteCreateDeploy({ draft: false, include_upload_url: false, deploy_source: 'cli' }, productionRules)).toEqual({
        ok: true,
        body: { draft: false, deploy_source: 'cli' },
      });
      expect(rewriteCreateDeploy({ draft: false, branch: 'staging' }, productionRules)).toEqual({ ok: true, body: { draft: false, branch: 'staging' } });
      expect(rewriteCreateDeploy({ draft: true }, productionRules)).toEqual({ ok: true, body: { draft: true } });
    });

    it('refuses source zips, unknown fields and bad values for everyone', () => {
      for (const rules of [previewRules, productionRules]) {
        expect(rewriteCreateDeploy({ draft: true, include_upload_url: true }, rules)).toMatchObject({ ok: false, reason: 'source_zip', status: 403 });
        expect(rewriteCreateDeploy({ draft: true, zip: 'UEsDBA' }, rules)).toMatchObject({ ok: false, reason: 'field_not_allowed' });
        expect(rewriteCreateDeploy({ draft: true, files: { 'a.html': SHA1 } }, rules)).toMatchObject({ ok: false, reason: 'field_not_allowed' });
        expect(rewriteCreateDeploy({ draft: 'yes' }, rules)).toMatchObject({ ok: false, reason: 'body_invalid', status: 400 });
        expect(rewriteCreateDeploy({ draft: true, branch: '../main' }, rules)).toMatchObject({ ok: false, reason: 'body_invalid' });
        expect(rewriteCreateDeploy({ draft: true, branch: 'x'.repeat(38) }, rules)).toMatchObject({ ok: false, reason: 'body_invalid' });
        expect(rewriteCreateDeploy({ draft: true, deploy_source: 'a\nb' }, rules)).toMatchObject({ ok: false, reason: 'body_invalid' });
        expect(rewriteCreateDeploy([], rules)).toMatchObject({ ok: false, reason: 'body_invalid' });
        expect(rewriteCreateDeploy(null, rules)).toMatchObject({ ok: false, reason: 'body_invalid' });
      }
    });
  });

  describe('update (PUT /sites/{site}/deploys/{deploy})', () => {
    const cliBody = {
      files: { 'index.html': SHA1, 'css/site.css': SHA1, 'netlify.toml': SHA1 },
      async: false,
      draft: false,
      framework: 'unknown',
      framework_version: 'unknown',
      build_version: '37.3.3',
    };

    it('a preview always carries draft: true (the CLI sends draft: false here even for drafts)', () => {
      expect(rewriteUpdateDeploy(cliBody, previewRules)).toEqual({ ok: true, body: { ...cliBody, draft: true } });
    });

    it('a production token sends the body as the CLI wrote it', () => {
      expect(rewriteUpdateDeploy(cliBody, productionRules)).toEqual({ ok: true, body: cliBody });
    });

    it('functions in previews only where the policy allows them', () => {
      const withFns = {
        ...cliBody,
        functions: { hello: SHA256 },
        functions_config: { hello: { priority: 10 } },
        function_schedules: [{ name: 'hello', cron: '@daily' }],
      };
      const r = rewriteUpdateDeploy(withFns, previewRules);
      expect(r).toMatchObject({ ok: false, reason: 'preview_functions', status: 403 });
      if (!r.ok) {
        expect(r.message).toContain('functions, scheduled functions in a preview deploy of site "docs"');
        expect(r.message).toContain('upstream.netlify.functions_in_previews: true');
      }
      expect(rewriteUpdateDeploy(withFns, { ...previewRules, functionsInPreviews: true })).toEqual({ ok: true, body: { ...withFns, draft: true } });
      expect(rewriteUpdateDeploy(withFns, productionRules)).toEqual({ ok: true, body: withFns });
      expect(rewriteUpdateDeploy({ ...cliBody, edge_functions: { x: {} } }, previewRules)).toMatchObject({ ok: false, reason: 'preview_functions' });
      expect(rewriteUpdateDeploy({ ...cliBody, server: { x: {} } }, previewRules)).toMatchObject({ ok: false, reason: 'preview_functions' });
      const env = [{ key: 'A', value: 'b', is_secret: false, scopes: ['functions'] }];
      expect(rewriteUpdateDeploy({ ...cliBody, environment: env }, previewRules)).toMatchObject({ ok: false, reason: 'preview_functions' });
      for (const [path, kind] of [
        ['.netlify/internal/edge-functions/manifest.json', 'edge functions'],
        ['.netlify/internal/db/migrations/0001_init.sql', 'database migrations'],
        ['.netlify/deploy-config/deploy-config.json', 'framework deploy configuration'],
        ['.netlify/other/x.json', 'Netlify-internal files'],
      ] as const) {
        const body = { ...cliBody, files: { ...cliBody.files, [path]: SHA1 } };
        const r = rewriteUpdateDeploy(body, previewRules);
        expect(r, path).toMatchObject({ ok: false, reason: 'preview_functions' });
        if (!r.ok) expect(r.message).toContain(`deploy-sts refused ${kind}`);
        expect(rewriteUpdateDeploy(body, { ...previewRules, functionsInPreviews: true })).toMatchObject({ ok: true });
        expect(rewriteUpdateDeploy(body, productionRules)).toMatchObject({ ok: true });
      }
      // Empty maps are no functions.
      expect(rewriteUpdateDeploy({ ...cliBody, functions: {}, edge_functions: {}, function_schedules: [] }, previewRules)).toMatchObject({ ok: true });
    });

    it('a preview never names a branch', () => {
      expect(rewriteUpdateDeploy({ ...cliBody, branch: 'main' }, previewRules)).toMatchObject({ ok: false, reason: 'preview_alias' });
      expect(rewriteUpdateDeploy({ ...cliBody, branch: 'main' }, productionRules)).toMatchObject({ ok: true });
    });

    it('validates digests, paths and every field; refuses the rest', () => {
      for (const rules of [previewRules, productionRules]) {
        const bad = (body: unknown) => rewriteUpdateDeploy(body, rules);
        expect(bad({ files: { 'a.html': 'abc' } })).toMatchObject({ ok: false, reason: 'body_invalid', status: 400 });
        expect(bad({ files: { 'a.html': SHA1.toUpperCase() } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ files: { '../a.html': SHA1 } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ files: { 'a//b.html': SHA1 } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ files: { 'a\u0000b': SHA1 } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ files: [] })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ functions: { hello: SHA1 } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ functions: { '../x': SHA256 } })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ function_schedules: [{ name: 'a', cron: 'x', site_id: OTHER }] })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ environment: [{ key: 'A', value: 1 }] })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ async: 'no' })).toMatchObject({ reason: 'body_invalid' });
        expect(bad({ zip: 'UEsDBA' })).toMatchObject({ ok: false, reason: 'field_not_allowed', status: 403 });
        expect(bad({ site_id: OTHER })).toMatchObject({ reason: 'field_not_allowed' });
        expect(bad({ published: true })).toMatchObject({ reason: 'field_not_allowed' });
        expect(bad('files')).toMatchObject({ reason: 'body_invalid' });
      }
    });
  });

  describe('answers', () => {
    it('a site never carries its secrets', () => {
      const site = {
        id: SITE,
        name: 'docs',
        url: 'http://docs.netlify.app',
        account_slug: 'acme',
        password: 'p',
        deploy_hook: 'h',
        default_hooks_data: { access_token: 't' },
        notification_email: 'e',
        session_id: 's',
        user_id: 'u',
        build_settings: { base: '', dir: 'build', functions_dir: 'fns', env: { A: 'b' }, deploy_key_id: 'k', repo_url: 'r' },
        repo: { env: { A: 'b' } },
      };
      const clean = sanitizeSite(site)!;
      expect(clean).toEqual({ id: SITE, name: 'docs', url: 'http://docs.netlify.app', account_slug: 'acme', build_settings: { base: '', dir: 'build', functions_dir: 'fns' } });
      expect(JSON.stringify(clean)).not.toMatch(/"p"|"h"|"t"|"e"|"s"|"u"|"k"|"r"/);
      expect(sanitizeSite('x')).toBeNull();
      expect(siteLookupAnswer(200, 'not an object', 'docs')).toEqual({ status: 200, body: [] });
    });
  });
});
