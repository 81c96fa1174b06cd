/**
 * What a deploy token may send in, and see of, Netlify's JSON bodies. Pure functions, no I/O.
 *
 * Requests: the bodies of createSiteDeploy and updateSiteDeploy (swagger `deployFiles`, plus the fields the netlify
 * CLI adds) are rebuilt from validated, allowlisted fields only, so nothing else can reach Netlify. For preview
 * tokens every body carries `draft: true` and no `branch` (a draft gets its own URL, so a fork overwrites nothing),
 * and functions (which run with the site's environment variables) are refused unless the site's policy sets
 * `functions_in_previews: true`. Note that the CLI sends `draft: false` with the digests even for a draft deploy
 * (draftness is decided when the deploy is created), so the update's `draft` is rewritten, not refused.
 *
 * Responses: a site is answered with the fields a deploy needs only (never its password, build hook, hook access
 * token or legacy build environment), a deploy without upload URLs or tokens, and an error as `{code, message}`.
 */

import type { DeployContext } from '../../verify/claims.js';

export type { DeployContext };

/** Netlify deploy ids are 24 lower-case hex digits. */
export const DEPLOY_ID = /^[0-9a-f]{24}$/;

export interface BodyRules {
  context: DeployContext;
  /** The Netlify site the token is bound to. */
  upstreamSiteId: string;
  /** The deploy-sts site slug, for messages. */
  site?: string;
  /** `upstream.netlify.functions_in_previews` of the site's policy. */
  functionsInPreviews: boolean;
}

export type BodyRefusalReason =
  | 'body_invalid'
  | 'field_not_allowed'
  | 'preview_publish'
  | 'preview_alias'
  | 'preview_functions'
  | 'source_zip';

export type BodyResult =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; reason: BodyRefusalReason; status: 400 | 403; message: string };

export const SHA1_DIGEST = /^[0-9a-f]{40}$/;
export const SHA256_DIGEST = /^[0-9a-f]{64}$/;
/** `--alias`: Netlify's subdomain prefix (at most 37 characters). */
const ALIAS = /^[a-z0-9](?:[a-z0-9-]{0,35}[a-z0-9])?$/i;
export const FUNCTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const LABEL = /^[\x20-\x7e]{0,200}$/;
const MAX_PATH = 4096;

/** `site "docs" (Netlify site 3970…)`, for messages. */
export function siteLabel(rules: { site?: string; upstreamSiteId: string }): string {
  return rules.site ? `site "${rules.site}" (Netlify site ${rules.upstreamSiteId})` : `Netlify site ${rules.upstreamSiteId}`;
}

const PUBLISH_FIX = 'preview tokens create draft deploys only: run netlify deploy without --prod';

function refuse(reason: BodyRefusalReason, message: string): BodyResult {
  return { ok: false, reason, status: reason === 'body_invalid' ? 400 : 403, message };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shown(value: string, max = 60): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(cut);
}

/** A deploy file path as the CLI sends it: relative, `/`-separated, no `.`/`..`/empty segments, no control characters. */
export function deployPathProblem(path: string): string | undefined {
  if (path.length === 0 || path.length > MAX_PATH) return `a file path must have 1 to ${MAX_PATH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(path)) return `the file path ${shown(path)} holds a control character or a backslash`;
  const segments = path.replace(/^\//, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return `the file path ${shown(path)} has an empty, . or .. segment`;
  return undefined;
}

/**
 * Files under `.netlify/` are not static content: the CLI ships edge function bundles
 * (`.netlify/internal/edge-functions/`), framework deploy configuration (`.netlify/deploy-config/`) and database
 * migrations (`.netlify/internal/db/migrations/`) as deploy files, and Netlify acts on them. For previews they count
 * as code, like functions.
 */
export function internalFileKind(path: string): string | undefined {
  const p = path.replace(/^\/+/, '');
  if (!p.startsWith('.netlify/')) return undefined;
  if (p.startsWith('.netlify/internal/edge-functions/')) return 'edge functions';
  if (p.startsWith('.netlify/internal/db/')) return 'database migrations';
  if (p.startsWith('.netlify/deploy-config/')) return 'framework deploy configuration';
  return `Netlify-internal files (${shown(p)})`;
}

/**
 * createSiteDeploy (`POST /sites/{site_id}/deploys`). The CLI sends `{draft, branch?, include_upload_url, deploy_source}`.
 */
export function rewriteCreateDeploy(body: unknown, rules: BodyRules): BodyResult {
  const where = `creating a deploy of ${siteLabel(rules)} with a ${rules.context} token`;
  if (!isObject(body)) return refuse('body_invalid', `deploy-sts refused ${where}: the body must be a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    switch (key) {
      case 'draft':
        if (typeof value !== 'boolean') return refuse('body_invalid', `deploy-sts refused ${where}: draft must be true or false`);
        break;
      case 'branch':
        if (value !== null && value !== '' && (typeof value !== 'string' || !ALIAS.test(value))) {
          return refuse('body_invalid', `deploy-sts refused ${where}: branch (--alias) must be 1 to 37 letters, digits or dashes`);
        }
        break;
      case 'include_upload_url':
        if (value === true) {
          return refuse(
            'source_zip',
            `deploy-sts refused ${where}: source zip uploads go to a storage URL outside the gateway; run netlify deploy without --upload-source-zip`,
          );
        }
        if (value !== false && value !== null) return refuse('body_invalid', `deploy-sts refused ${where}: include_upload_url must be false`);
        break;
      case 'deploy_source':
        if (typeof value !== 'string' || !LABEL.test(value)) return refuse('body_invalid', `deploy-sts refused ${where}: deploy_source must be a short printable string`);
        out.deploy_source = value;
        break;
      default:
        return refuse(
          'field_not_allowed',
          `deploy-sts refused ${where}: the field ${shown(key)} is not forwarded (a deploy is created with draft, branch and deploy_source only; files are sent in the next step, as netlify deploy does)`,
        );
    }
  }
  const branch = typeof body.branch === 'string' && body.branch !== '' ? body.branch : undefined;
  if (rules.context === 'preview') {
    if (branch !== undefined) {
      return refuse(
        'preview_alias',
        `deploy-sts refused a branch deploy (--alias ${branch}) of ${siteLabel(rules)} with a preview token: preview tokens create draft deploys only, each with its own URL: run netlify deploy without --alias or --prod`,
      );
    }
    if (body.draft === false) {
      return refuse('preview_publish', `deploy-sts refused a production deploy of ${siteLabel(rules)} with a preview token: ${PUBLISH_FIX}`);
    }
    out.draft = true;
    return { ok: true, body: out };
  }
  // Production: as sent. Netlify's default for an absent draft is a production deploy, which this token may make.
  if (typeof body.draft === 'boolean') out.draft = body.draft;
  if (branch !== undefined) out.branch = branch;
  return { ok: true, body: out };
}

/**
 * updateSiteDeploy (`PUT /sites/{site_id}/deploys/{deploy_id}`): the file and function digests. The CLI sends
 * `{files, functions?, functions_config?, function_schedules?, edge_functions?, server?, async, draft, framework,
 * framework_version, build_version, environment?}`.
 */
export function rewriteUpdateDeploy(body: unknown, rules: BodyRules): BodyResult {
  const where = `sending the files of a deploy of ${siteLabel(rules)} with a ${rules.context} token`;
  const invalid = (why: string) => refuse('body_invalid', `deploy-sts refused ${where}: ${why}`);
  if (!isObject(body)) return invalid('the body must be a JSON object');
  const out: Record<string, unknown> = {};
  /** Which function-like fields carry something (they run code with the site's environment). */
  const runsCode: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    switch (key) {
      case 'files': {
        if (!isObject(value)) return invalid('files must be an object of path → SHA-1 digest');
        for (const [path, sha] of Object.entries(value)) {
          const problem = deployPathProblem(path);
          if (problem) return invalid(problem);
          if (typeof sha !== 'string' || !SHA1_DIGEST.test(sha)) return invalid(`files[${shown(path)}] must be a lower-case SHA-1 hex digest`);
          const internal = internalFileKind(path);
          if (internal) runsCode.push(internal);
        }
        out.files = value;
        break;
      }
      case 'functions': {
        if (!isObject(value)) return invalid('functions must be an object of name → SHA-256 digest');
        for (const [name, sha] of Object.entries(value)) {
          if (!FUNCTION_NAME.test(name)) return invalid(`the function name ${shown(name)} is not a valid Netlify function name`);
          if (typeof sha !== 'string' || !SHA256_DIGEST.test(sha)) return invalid(`functions[${shown(name)}] must be a lower-case SHA-256 hex digest`);
        }
        if (Object.keys(value).length > 0) runsCode.push('functions');
        out.functions = value;
        break;
      }
      case 'edge_functions':
      case 'server':
      case 'functions_config': {
        if (!isObject(value)) return invalid(`${key} must be an object`);
        if (Object.keys(value).length > 0) runsCode.push(key === 'functions_config' ? 'functions' : key === 'server' ? 'server code' : 'edge functions');
        out[key] = value;
        break;
      }
      case 'function_schedules': {
        if (!Array.isArray(value)) return invalid('function_schedules must be an array');
        for (const item of value) {
          if (!isObject(item) || typeof item.name !== 'string' || typeof item.cron !== 'string' || Object.keys(item).some((k) => k !== 'name' && k !== 'cron')) {
            return invalid('function_schedules items must be {name, cron}');
          }
        }
        if (value.length > 0) runsCode.push('scheduled functions');
        out.function_schedules = value;
        break;
      }
      case 'environment': {
        if (!Array.isArray(value)) return invalid('environment must be an array of {key, value, is_secret, scopes}');
        for (const item of value) {
          if (
            !isObject(item) ||
            typeof item.key !== 'string' ||
            typeof item.value !== 'string' ||
            (item.is_secret !== undefined && typeof item.is_secret !== 'boolean') ||
            (item.scopes !== undefined && (!Array.isArray(item.scopes) || item.scopes.some((s) => typeof s !== 'string'))) ||
            Object.keys(item).some((k) => !['key', 'value', 'is_secret', 'scopes'].includes(k))
          ) {
            return invalid('environment items must be {key, value, is_secret, scopes}');
          }
        }
        if (value.length > 0) runsCode.push('deploy environment variables (--env, --secret-env)');
        out.environment = value;
        break;
      }
      case 'async':
      case 'draft':
        if (typeof value !== 'boolean') return invalid(`${key} must be true or false`);
        out[key] = value;
        break;
      case 'branch':
        if (value === null || value === '') break;
        if (typeof value !== 'string' || !ALIAS.test(value)) return invalid('branch must be 1 to 37 letters, digits or dashes');
        out.branch = value;
        break;
      case 'framework':
      case 'framework_version':
      case 'build_version':
        if (typeof value !== 'string' || !LABEL.test(value)) return invalid(`${key} must be a short printable string`);
        out[key] = value;
        break;
      default:
        return refuse(
          'field_not_allowed',
          `deploy-sts refused ${where}: the field ${shown(key)} is not forwarded (allowed: files, functions, functions_config, function_schedules, edge_functions, server, environment, async, draft, branch, framework, framework_version, build_version)`,
        );
    }
  }
  if (rules.context === 'preview') {
    if (out.branch !== undefined) {
      return refuse(
        'preview_alias',
        `deploy-sts refused a branch deploy of ${siteLabel(rules)} with a preview token: preview tokens create draft deploys only: run netlify deploy without --alias or --prod`,
      );
    }
    if (runsCode.length > 0 && !rules.functionsInPreviews) {
      return refuse(
        'preview_functions',
        `deploy-sts refused ${[...new Set(runsCode)].join(', ')} in a preview deploy of ${siteLabel(rules)}: preview code would run with the site's environment variables. Deploy previews without functions (netlify deploy without --functions, no functions directory), or let the site's policy allow them with upstream.netlify.functions_in_previews: true`,
      );
    }
    out.draft = true;
  }
  return { ok: true, body: out };
}

// ---- answers ------------------------------------------------------------------------------------------------------

const SITE_FIELDS = [
  'id',
  'name',
  'state',
  'plan',
  'url',
  'ssl_url',
  'admin_url',
  'deploy_url',
  'screenshot_url',
  'custom_domain',
  'domain_aliases',
  'branch_deploy_custom_domain',
  'deploy_preview_custom_domain',
  'account_id',
  'account_name',
  'account_slug',
  'created_at',
  'updated_at',
  'ssl',
  'force_ssl',
  'managed_dns',
  'capabilities',
  'processing_settings',
  'feature_flags',
  'build_image',
  'functions_region',
  'prerender',
] as const;

/** What the CLI reads of `build_settings` (publish and functions directories); never its `env`. */
const BUILD_SETTINGS_FIELDS = ['base', 'dir', 'functions_dir', 'package_path'] as const;

const DEPLOY_FIELDS = [
  'id',
  'site_id',
  'build_id',
  'state',
  'name',
  'url',
  'ssl_url',
  'admin_url',
  'deploy_url',
  'deploy_ssl_url',
  'screenshot_url',
  'review_id',
  'draft',
  'required',
  'required_functions',
  'required_edge_functions',
  'required_server',
  'error_message',
  'branch',
  'commit_ref',
  'commit_url',
  'skipped',
  'created_at',
  'updated_at',
  'published_at',
  'title',
  'context',
  'locked',
  'review_url',
  'framework',
  'function_schedules',
  'functions_region',
  'functions_region_overrides',
] as const;

function pick(source: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) if (Object.hasOwn(source, field)) out[field] = source[field];
  return out;
}

/** A deploy as a deploy token may see it: no upload URLs, no skew-protection token, no user id. */
export function sanitizeDeploy(deploy: unknown): Record<string, unknown> | null {
  if (!isObject(deploy)) return null;
  return pick(deploy, DEPLOY_FIELDS);
}

/** A site as a deploy token may see it: no password, build hook, hook token, notification e-mail or build environment. */
export function sanitizeSite(site: unknown): Record<string, unknown> | null {
  if (!isObject(site)) return null;
  const out = pick(site, SITE_FIELDS);
  if (Object.hasOwn(site, 'published_deploy')) out.published_deploy = site.published_deploy === null ? null : sanitizeDeploy(site.published_deploy);
  if (isObject(site.build_settings)) out.build_settings = pick(site.build_settings, BUILD_SETTINGS_FIELDS);
  return out;
}

/** An error answer reduced to Netlify's documented shape. */
export function errorAnswer(status: number, body: unknown): { code: number; message: string } {
  const message = isObject(body) && typeof body.message === 'string' ? body.message.slice(0, 500) : `Netlify answered ${status}`;
  return { code: status, message };
}

/** The answer to `GET /sites?name=N` built from the bound site: `[site]` when its name is exactly N, else `[]`. */
export function siteLookupAnswer(status: number, site: unknown, name: string): { status: number; body: unknown } {
  if (status === 404) return { status: 200, body: [] };
  if (status >= 400) return { status, body: errorAnswer(status, site) };
  const clean = sanitizeSite(site);
  return { status: 200, body: clean !== null && clean.name === name ? [clean] : [] };
}

export function siteAnswer(status: number, site: unknown): { status: number; body: unknown } {
  if (status >= 400) return { status, body: errorAnswer(status, site) };
  return { status, body: sanitizeSite(site) ?? {} };
}

export function deployAnswer(status: number, deploy: unknown): { status: number; body: unknown } {
  if (status >= 400) return { status, body: errorAnswer(status, deploy) };
  return { status, body: sanitizeDeploy(deploy) ?? {} };
}
