/**
 * The Netlify route allowlist: for one request below `/gateway/netlify/api/v1`, what the gateway does with it —
 * forward it (which operation, what the token needs, which deploy it names, how its body and answer are rewritten),
 * answer it itself, or refuse it with a message for the person who can fix it. Pure: no I/O, no clock.
 *
 * Derived from Netlify's OpenAPI description (netlify/open-api swagger.yml) and from what `netlify deploy`
 * (netlify-cli 27.x) actually sends:
 *
 *   GET  /sites/{bound}                       getSite            deployments:read   answer without secrets
 *   GET  /sites/{name}                        (the CLI tries the --site value as an id first) 404, as Netlify
 *   GET  /sites?name=N                        listSites by name  deployments:read   answered from getSite: [bound] or []
 *   GET  /accounts                            listAccountsForUser                   answered: []
 *   GET  /accounts/{a}/env, /api/v1/sites/{bound}/env   environment variables      answered: [] (values never read)
 *   POST /sites/{bound}/deploys               createSiteDeploy   deployments:write  body checked (bodies.ts)
 *   PUT  /sites/{bound}/deploys/{d}           updateSiteDeploy   deployments:write  body checked (bodies.ts)
 *   GET  /sites/{bound}/deploys/{d}           getSiteDeploy      deployments:read
 *   GET  /deploys/{d}                         getDeploy          deployments:read
 *   POST /deploys/{d}/cancel                  cancelSiteDeploy   deployments:write
 *   PUT  /deploys/{d}/files/{path}            uploadDeployFile   deployments:write  streamed
 *   PUT  /deploys/{d}/functions/{name}        uploadDeployFunction, and edge_functions/{sha}, server/{sha}:
 *                                             deployments:write, streamed; preview tokens only with functions_in_previews
 *   POST /sites/{bound}/deploys/{d}/restore   restoreSiteDeploy  deployments:write  production tokens only
 *
 * Everything else is refused without reaching Netlify: deleting or changing a site or deploy, locking, rolling back,
 * hooks, domains, members, keys, builds, environment variable values and writes, other sites, listing sites.
 * Deploys named by id must have been created through the gateway for the bound site (checked by the gateway core
 * against its records: `deployCheck: 'recorded'`).
 */
import type { Answer, Forward, GatewayRequest, Plan, Refusal } from '../platform.js';
import {
  DEPLOY_ID,
  FUNCTION_NAME,
  deployAnswer,
  deployPathProblem,
  internalFileKind,
  rewriteCreateDeploy,
  rewriteUpdateDeploy,
  siteAnswer,
  siteLabel,
  siteLookupAnswer,
  type BodyRules,
  type DeployContext,
} from './bodies.js';

/** Netlify site ids are UUIDs (lower-case hex). */
export const SITE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CODE_SHA = /^[0-9a-f]{40,64}$/;

export type NetlifyRoute =
  | 'site.get'
  | 'site.not-found'
  | 'sites.find-by-name'
  | 'accounts.list'
  | 'env.list'
  | 'deploy.create'
  | 'deploy.update'
  | 'deploy.get'
  | 'deploy.get-by-id'
  | 'deploy.cancel'
  | 'deploy.restore'
  | 'deploy.upload-file'
  | 'deploy.upload-function'
  | 'deploy.upload-edge-function'
  | 'deploy.upload-server'
  | 'refused';

/** Why a request was refused: a closed set, stable for audit and tests. */
export type NetlifyRefusalReason =
  | 'route_not_allowed'
  | 'other_site'
  | 'site_by_name'
  | 'invalid_id'
  | 'invalid_path'
  | 'production_only'
  | 'preview_functions'
  | 'query_not_allowed'
  | 'env_value'
  | 'missing_scope';

export interface NetlifyToken {
  context: DeployContext;
  /** Space-separated permissions, e.g. `deployments:write`. */
  scope: string;
}

export interface NetlifyBinding {
  upstreamSiteId: string;
  functionsInPreviews: boolean;
  /** The deploy-sts site slug, for messages. */
  site?: string;
}

export interface NetlifyRefusal extends Refusal {
  reason: NetlifyRefusalReason;
}

export type NetlifyPlan = (Forward & { route: NetlifyRoute }) | (Answer & { route: NetlifyRoute }) | NetlifyRefusal;

const READ = 'deployments:read';
const WRITE = 'deployments:write';

/** Write implies read on the same resource. */
export function grants(scope: string, permission: string): boolean {
  const [resource] = permission.split(':');
  return scope.split(' ').some((granted) => granted === permission || (permission.endsWith(':read') && granted === `${resource}:write`));
}

interface Ctx {
  method: string;
  /** e.g. `GET /sites/{site_id}` — what the message names. */
  what: string;
  token: NetlifyToken;
  binding: NetlifyBinding;
  rules: BodyRules;
}

function refusal(route: NetlifyRoute, status: Refusal['status'], reason: NetlifyRefusalReason, message: string): NetlifyRefusal {
  return { kind: 'refuse', route, status, reason, message };
}

function notAllowed(ctx: Ctx, operation: string, why: string): NetlifyRefusal {
  return refusal(
    'refused',
    403,
    'route_not_allowed',
    `deploy-sts refused ${ctx.what}${operation ? ` (${operation})` : ''} for ${siteLabel(ctx.rules)}: ${why}`,
  );
}

const DEPLOY_ONLY = 'a deploy token can only create, upload, poll and cancel deploys of its site; use a Netlify account token for anything else';

/** Split and decode the path; refuse what could mean something else upstream. */
function segmentsOf(path: string): string[] | string {
  if (!path.startsWith('/')) return 'the path must start with /';
  const raw = path.slice(1).split('/');
  const out: string[] = [];
  for (const segment of raw) {
    if (segment === '') return 'the path has an empty segment (//)';
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return 'the path holds a malformed percent-encoding';
    }
    if (decoded === '.' || decoded === '..') return 'the path has a . or .. segment';
    // eslint-disable-next-line no-control-regex
    if (/[/\\\x00-\x1f\x7f]/.test(decoded)) return 'the path holds an encoded /, \\ or control character';
    out.push(decoded);
  }
  return out;
}

/** Only the listed query parameters, each at most once; anything else is refused rather than dropped. */
function checkQuery(ctx: Ctx, query: URLSearchParams, allowed: Readonly<Record<string, RegExp>>): URLSearchParams | NetlifyRefusal {
  const out = new URLSearchParams();
  for (const key of new Set(query.keys())) {
    const pattern = allowed[key];
    const values = query.getAll(key);
    if (!pattern) {
      return refusal(
        'refused',
        400,
        'query_not_allowed',
        `deploy-sts refused ${ctx.what} for ${siteLabel(ctx.rules)}: the query parameter ${JSON.stringify(key.slice(0, 40))} is not forwarded${Object.keys(allowed).length ? ` (allowed: ${Object.keys(allowed).join(', ')})` : ''}`,
      );
    }
    if (values.length !== 1 || !pattern.test(values[0]!)) {
      return refusal('refused', 400, 'query_not_allowed', `deploy-sts refused ${ctx.what} for ${siteLabel(ctx.rules)}: the query parameter ${key} must be given once, in its documented form`);
    }
    out.set(key, values[0]!);
  }
  return out;
}

function needScope(ctx: Ctx, route: NetlifyRoute, permission: string): NetlifyRefusal | undefined {
  if (grants(ctx.token.scope, permission)) return undefined;
  return refusal(
    route,
    403,
    'missing_scope',
    `deploy-sts refused ${ctx.what} for ${siteLabel(ctx.rules)}: the token's permissions (${ctx.token.scope || 'none'}) do not include ${permission}; grant it in the site's policy rule`,
  );
}

function checkSite(ctx: Ctx, id: string): NetlifyRefusal | undefined {
  if (id === ctx.binding.upstreamSiteId) return undefined;
  if (!SITE_ID.test(id)) {
    if (/^[0-9A-Fa-f-]{36}$/.test(id)) return refusal('refused', 400, 'invalid_id', `deploy-sts refused ${ctx.what}: site ids are lower-case UUIDs`);
    // The CLI tries the --site value as an id before looking it up by name; answer 404 as Netlify does for a name.
    return refusal(
      'site.not-found',
      404,
      'site_by_name',
      `Not Found: through deploy-sts a site is named by its Netlify site id (this token deploys ${siteLabel(ctx.rules)}); netlify deploy --no-build --site <name> then finds it by name`,
    );
  }
  return refusal(
    'refused',
    403,
    'other_site',
    `deploy-sts refused ${ctx.what}: this token deploys ${siteLabel(ctx.rules)} only, not Netlify site ${id}; use a token minted for that site`,
  );
}

function checkDeployId(ctx: Ctx, id: string): NetlifyRefusal | undefined {
  if (DEPLOY_ID.test(id)) return undefined;
  return refusal('refused', 400, 'invalid_id', `deploy-sts refused ${ctx.what} for ${siteLabel(ctx.rules)}: ${JSON.stringify(id.slice(0, 40))} is not a Netlify deploy id (24 hex digits)`);
}

function forward(route: NetlifyRoute, fields: Omit<Forward, 'kind' | 'route'>): Forward & { route: NetlifyRoute } {
  return { kind: 'forward', route, ...fields };
}

function answer(route: NetlifyRoute, status: number, body: unknown): Answer & { route: NetlifyRoute } {
  return { kind: 'answer', route, status, body };
}

const NONE: Readonly<Record<string, RegExp>> = {};
const SHORT = /^[\x20-\x7e]{0,200}$/;
const DIGITS = /^[0-9]{1,12}$/;

/** Decide what the gateway does with one request. */
export function planNetlifyRequest(request: GatewayRequest, token: NetlifyToken, binding: NetlifyBinding): NetlifyPlan {
  const method = request.method.toUpperCase();
  const rules: BodyRules = {
    context: token.context,
    upstreamSiteId: binding.upstreamSiteId,
    site: binding.site,
    functionsInPreviews: binding.functionsInPreviews,
  };
  const shownPath = request.path.length > 120 ? `${request.path.slice(0, 120)}…` : request.path;
  const ctx: Ctx = { method, what: `${method} ${shownPath}`, token, binding, rules };
  const segments = segmentsOf(request.path);
  if (typeof segments === 'string') return refusal('refused', 400, 'invalid_path', `deploy-sts refused ${ctx.what}: ${segments}`);
  const bound = binding.upstreamSiteId;
  const [first, second, third, fourth, fifth] = segments;
  const n = segments.length;

  // ---- /sites ----
  if (first === 'sites') {
    if (n === 1) {
      if (method !== 'GET') return notAllowed(ctx, 'createSite', 'a deploy token never creates sites');
      const name = request.query.get('name');
      if (name === null || name === '') {
        return notAllowed(ctx, 'listSites', "listing the account's sites is not allowed; pass --site with the name or id of the token's site");
      }
      const query = checkQuery(ctx, request.query, { name: /^[\x20-\x7e]{1,200}$/, filter: /^(all|owner|guest)$/, page: DIGITS, per_page: DIGITS });
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'sites.find-by-name', READ);
      if (scope) return scope;
      return forward('sites.find-by-name', {
        upstreamPath: `/sites/${bound}`,
        upstreamQuery: new URLSearchParams(),
        body: 'none',
        scope: READ,
        respond: (status, body) => siteLookupAnswer(status, body, name),
      });
    }
    const siteProblem = checkSite(ctx, second!);
    if (siteProblem) return siteProblem;
    if (n === 2) {
      if (method === 'DELETE') return notAllowed(ctx, 'deleteSite', 'a deploy token never deletes a site');
      if (method === 'PATCH' || method === 'PUT') return notAllowed(ctx, 'updateSite', "a deploy token never changes a site's settings");
      if (method !== 'GET') return notAllowed(ctx, '', DEPLOY_ONLY);
      const query = checkQuery(ctx, request.query, { feature_flags: SHORT });
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'site.get', READ);
      if (scope) return scope;
      return forward('site.get', { upstreamPath: `/sites/${bound}`, upstreamQuery: query, body: 'none', scope: READ, respond: siteAnswer });
    }
    if (third === 'deploys') {
      if (n === 3) {
        if (method === 'GET') return notAllowed(ctx, 'listSiteDeploys', "a deploy token does not list the site's deploys; it reads the deploys it created");
        if (method !== 'POST') return notAllowed(ctx, '', DEPLOY_ONLY);
        const query = checkQuery(ctx, request.query, { title: /^[^\x00-\x1f\x7f]{0,1000}$/ });
        if (!(query instanceof URLSearchParams)) return query;
        const scope = needScope(ctx, 'deploy.create', WRITE);
        if (scope) return scope;
        return forward('deploy.create', {
          upstreamPath: `/sites/${bound}/deploys`,
          upstreamQuery: query,
          body: 'json',
          rewrite: (body) => rewriteCreateDeploy(body, rules),
          createsDeploy: true,
          scope: WRITE,
          respond: deployAnswer,
        });
      }
      const idProblem = checkDeployId(ctx, fourth!);
      if (idProblem) return idProblem;
      const deployId = fourth!;
      if (n === 4) {
        if (method === 'GET') {
          const query = checkQuery(ctx, request.query, NONE);
          if (!(query instanceof URLSearchParams)) return query;
          const scope = needScope(ctx, 'deploy.get', READ);
          if (scope) return scope;
          return forward('deploy.get', {
            upstreamPath: `/sites/${bound}/deploys/${deployId}`,
            upstreamQuery: query,
            deployId,
            deployCheck: 'recorded',
            body: 'none',
            scope: READ,
            respond: deployAnswer,
          });
        }
        if (method === 'PUT') {
          const query = checkQuery(ctx, request.query, NONE);
          if (!(query instanceof URLSearchParams)) return query;
          const scope = needScope(ctx, 'deploy.update', WRITE);
          if (scope) return scope;
          return forward('deploy.update', {
            upstreamPath: `/sites/${bound}/deploys/${deployId}`,
            upstreamQuery: query,
            deployId,
            deployCheck: 'recorded',
            body: 'json',
            rewrite: (body) => rewriteUpdateDeploy(body, rules),
            scope: WRITE,
            respond: deployAnswer,
          });
        }
        if (method === 'DELETE') return notAllowed(ctx, 'deleteSiteDeploy', 'a deploy token never deletes a deploy');
        return notAllowed(ctx, '', DEPLOY_ONLY);
      }
      if (n === 5 && fifth === 'restore' && method === 'POST') {
        const query = checkQuery(ctx, request.query, NONE);
        if (!(query instanceof URLSearchParams)) return query;
        if (token.context !== 'production') {
          return refusal(
            'deploy.restore',
            403,
            'production_only',
            `deploy-sts refused restoring deploy ${deployId} of ${siteLabel(rules)} with a preview token: restoring publishes to production, which only a token from a production rule can do`,
          );
        }
        const scope = needScope(ctx, 'deploy.restore', WRITE);
        if (scope) return scope;
        return forward('deploy.restore', {
          upstreamPath: `/sites/${bound}/deploys/${deployId}/restore`,
          upstreamQuery: query,
          deployId,
          deployCheck: 'recorded',
          deployContext: 'production',
          body: 'none',
          scope: WRITE,
          respond: deployAnswer,
        });
      }
      return notAllowed(ctx, '', DEPLOY_ONLY);
    }
    if (n === 3 && third === 'rollback') {
      return notAllowed(ctx, 'rollbackSiteDeploy', 'a deploy token does not roll back; a production token can restore a deploy it made (restoreSiteDeploy)');
    }
    if (n === 3 && third === 'env') return notAllowed(ctx, '', 'environment variables are never readable or writable with a deploy token');
    return notAllowed(ctx, '', `${DEPLOY_ONLY} (site settings, hooks, domains, builds, forms and keys are not reachable)`);
  }

  // ---- /api/v1/sites/{site}/env (the swagger path of getSiteEnvVars repeats the base path) ----
  if (first === 'api' && second === 'v1' && third === 'sites' && n === 5 && fifth === 'env') {
    const siteProblem = checkSite(ctx, fourth!);
    if (siteProblem) return siteProblem;
    if (method !== 'GET') return notAllowed(ctx, '', 'environment variables are never writable with a deploy token');
    const scope = needScope(ctx, 'env.list', READ);
    if (scope) return scope;
    return answer('env.list', 200, []);
  }

  // ---- /deploys/{id}/... ----
  if (first === 'deploys' && n >= 2) {
    const idProblem = checkDeployId(ctx, second!);
    if (idProblem) return idProblem;
    const deployId = second!;
    if (n === 2) {
      if (method === 'DELETE') return notAllowed(ctx, 'deleteDeploy', 'a deploy token never deletes a deploy');
      if (method !== 'GET') return notAllowed(ctx, '', DEPLOY_ONLY);
      const query = checkQuery(ctx, request.query, NONE);
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'deploy.get-by-id', READ);
      if (scope) return scope;
      return forward('deploy.get-by-id', {
        upstreamPath: `/deploys/${deployId}`,
        upstreamQuery: query,
        deployId,
        deployCheck: 'recorded',
        body: 'none',
        scope: READ,
        respond: deployAnswer,
      });
    }
    if (n === 3 && third === 'cancel' && method === 'POST') {
      const query = checkQuery(ctx, request.query, NONE);
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'deploy.cancel', WRITE);
      if (scope) return scope;
      return forward('deploy.cancel', {
        upstreamPath: `/deploys/${deployId}/cancel`,
        upstreamQuery: query,
        deployId,
        deployCheck: 'recorded',
        body: 'none',
        scope: WRITE,
        respond: deployAnswer,
      });
    }
    if (n === 3 && (third === 'lock' || third === 'unlock')) {
      return notAllowed(ctx, third === 'lock' ? 'lockDeploy' : 'unlockDeploy', "locking changes the site's auto-publishing; a deploy token never does");
    }
    if (n >= 4 && third === 'files') {
      if (method !== 'PUT') return notAllowed(ctx, '', DEPLOY_ONLY);
      const filePath = segments.slice(3).join('/');
      const problem = deployPathProblem(filePath);
      if (problem) return refusal('refused', 400, 'invalid_path', `deploy-sts refused ${ctx.what}: ${problem}`);
      const internal = internalFileKind(filePath);
      if (internal && token.context === 'preview' && !binding.functionsInPreviews) {
        return refusal(
          'deploy.upload-file',
          403,
          'preview_functions',
          `deploy-sts refused uploading ${internal} to a preview deploy of ${siteLabel(rules)}: preview code would run with the site's environment variables; deploy previews without them, or set upstream.netlify.functions_in_previews: true in the site's policy`,
        );
      }
      const query = checkQuery(ctx, request.query, { size: DIGITS });
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'deploy.upload-file', WRITE);
      if (scope) return scope;
      return forward('deploy.upload-file', {
        upstreamPath: `/deploys/${deployId}/files/${segments.slice(3).map(encodeURIComponent).join('/')}`,
        upstreamQuery: query,
        deployId,
        deployCheck: 'recorded',
        body: 'stream',
        scope: WRITE,
      });
    }
    if (n === 4 && (third === 'functions' || third === 'edge_functions' || third === 'server')) {
      if (method !== 'PUT') return notAllowed(ctx, '', DEPLOY_ONLY);
      const route: NetlifyRoute = third === 'functions' ? 'deploy.upload-function' : third === 'edge_functions' ? 'deploy.upload-edge-function' : 'deploy.upload-server';
      const name = fourth!;
      if (!(third === 'functions' ? FUNCTION_NAME : CODE_SHA).test(name)) {
        return refusal('refused', 400, 'invalid_path', `deploy-sts refused ${ctx.what}: ${JSON.stringify(name.slice(0, 40))} is not a valid ${third === 'functions' ? 'function name' : 'code digest'}`);
      }
      if (token.context === 'preview' && !binding.functionsInPreviews) {
        return refusal(
          route,
          403,
          'preview_functions',
          `deploy-sts refused uploading ${third === 'functions' ? `function ${name}` : third.replace('_', ' ')} to a preview deploy of ${siteLabel(rules)}: preview code would run with the site's environment variables; deploy previews without functions, or set upstream.netlify.functions_in_previews: true in the site's policy`,
        );
      }
      const query = checkQuery(
        ctx,
        request.query,
        third === 'functions' ? { runtime: /^[a-z0-9.]{1,40}$/, invocation_mode: /^[a-z_]{1,40}$/, timeout: DIGITS, size: DIGITS } : { size: DIGITS },
      );
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, route, WRITE);
      if (scope) return scope;
      return forward(route, {
        upstreamPath: `/deploys/${deployId}/${third}/${encodeURIComponent(name)}`,
        upstreamQuery: query,
        deployId,
        deployCheck: 'recorded',
        body: 'stream',
        scope: WRITE,
      });
    }
    return notAllowed(ctx, '', DEPLOY_ONLY);
  }

  // ---- /accounts ----
  if (first === 'accounts') {
    if (n === 1 && method === 'GET') {
      const query = checkQuery(ctx, request.query, { minimal: /^(true|false)$/ });
      if (!(query instanceof URLSearchParams)) return query;
      const scope = needScope(ctx, 'accounts.list', READ);
      if (scope) return scope;
      // Only used to pick a team for a new site: with none, the CLI can never create one.
      return answer('accounts.list', 200, []);
    }
    if (n === 3 && third === 'env' && method === 'GET') {
      const query = checkQuery(ctx, request.query, {
        site_id: /^[\x21-\x7e]{1,64}$/,
        context_name: /^[a-z-]{1,40}$/,
        scope: /^[a-z_-]{1,40}$/,
      });
      if (!(query instanceof URLSearchParams)) return query;
      const siteId = query.get('site_id');
      if (siteId !== null) {
        const siteProblem = checkSite(ctx, siteId);
        if (siteProblem) return siteProblem.reason === 'site_by_name' ? refusal('refused', 400, 'invalid_id', `deploy-sts refused ${ctx.what}: site_id must be a site id`) : siteProblem;
      }
      const scope = needScope(ctx, 'env.list', READ);
      if (scope) return scope;
      // `netlify deploy` reads the variables to bundle functions; a deploy token never sees a value.
      return answer('env.list', 200, []);
    }
    if (n >= 3 && third === 'env') {
      return refusal(
        'refused',
        403,
        'env_value',
        `deploy-sts refused ${ctx.what} for ${siteLabel(rules)}: environment variable values are never readable or writable with a deploy token; use a Netlify account token`,
      );
    }
    return notAllowed(ctx, '', "a deploy token never reads or changes the account, its members or its billing");
  }

  if (first === 'user' && n === 1) return notAllowed(ctx, 'getCurrentUser', 'a deploy token acts for no user');
  return notAllowed(ctx, '', DEPLOY_ONLY);
}
