/**
 * A stand-in for Netlify's API (https://api.netlify.com/api/v1) on 127.0.0.1:0, for the deploy gateway's tests.
 *
 * It implements the operations `netlify deploy` uses, with the request and response shapes of Netlify's OpenAPI
 * description (netlify/open-api swagger.yml: site, deploy, deployFiles, file, function, envVar, accountMembership,
 * user, error), and models what a deploy changes:
 * - a deploy is created (`POST /sites/{site_id}/deploys`); `draft` and `branch` decide, at creation, its context:
 *   draft → `deploy-preview`, a branch (`--alias`) → `branch-deploy`, otherwise `production`;
 * - its digests are sent (`PUT /sites/{site_id}/deploys/{deploy_id}`: `files` path → SHA-1, `functions` name →
 *   SHA-256); `required` / `required_functions` list the digests the stand-in has not stored yet (so a second deploy
 *   of the same content uploads nothing, as on Netlify);
 * - files and functions are uploaded (`PUT /deploys/{id}/files/{path}`, `/functions/{name}`), streamed: bytes are
 *   counted and hashed as they arrive, never buffered, and an upload whose content does not match its digest is
 *   refused with 422;
 * - when nothing is missing the deploy is `ready`; a ready production deploy becomes the site's `published_deploy`;
 *   drafts and branch deploys never do. `restore` publishes an earlier ready deploy, `rollback` the previous one.
 * The `draft` sent with the digests is ignored: the CLI always sends `draft: false` there, drafts included.
 *
 * Every request is recorded (method, path, query, headers — Authorization included — body size, JSON body, answer
 * status) so tests can prove what reached "Netlify" and what never did. Errors use Netlify's shape
 * `{"code": N, "message": "..."}`.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const SITE_ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DEPLOY_ID_SHAPE = /^[0-9a-f]{24}$/;
const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** JSON bodies are buffered up to this size (a files map of 100,000 paths fits); uploads are streamed. */
const MAX_JSON_BODY = 32 * 1024 * 1024;

export interface RecordedRequest {
  method: string;
  /** The path as received, still percent-encoded, e.g. `/api/v1/deploys/…/files/a%20b.html`. */
  path: string;
  query: URLSearchParams;
  /** Every header as received (lower-case names). */
  headers: IncomingHttpHeaders;
  /** Bytes of request body received. */
  bodyBytes: number;
  /** The parsed body of a JSON request (create/update deploy, …); undefined for uploads and empty bodies. */
  json?: unknown;
  /** The status the stand-in answered. */
  status: number;
}

export interface EnvVarValue {
  id: string;
  value: string;
  context: 'all' | 'dev' | 'branch-deploy' | 'deploy-preview' | 'production';
}

export interface EnvVar {
  key: string;
  scopes: ('builds' | 'functions' | 'runtime' | 'post-processing')[];
  values: EnvVarValue[];
  is_secret: boolean;
  updated_at: string;
}

export interface StandinSite {
  id: string;
  name: string;
  account_id: string;
  account_slug: string;
  account_name: string;
  created_at: string;
  updated_at: string;
  /** The published deploy's id, or null before the first production deploy. */
  publishedDeployId: string | null;
  /** Ids of deploys that were published, oldest first (for rollback). */
  publishHistory: string[];
  /** Site-level environment variables (values a gateway must never hand out). */
  env: EnvVar[];
  /** Site secrets in the shapes Netlify returns them (a gateway must strip them from any site it forwards). */
  password: string;
  deploy_hook: string;
  hooks_access_token: string;
  deleted: boolean;
}

export interface UploadedFile {
  path: string;
  sha: string;
  size: number;
}

export interface StandinDeploy {
  id: string;
  site_id: string;
  state: 'new' | 'preparing' | 'prepared' | 'uploading' | 'ready' | 'error';
  draft: boolean;
  branch: string | null;
  context: 'production' | 'deploy-preview' | 'branch-deploy';
  title: string | null;
  deploy_source: string | null;
  async: boolean;
  /** Path (no leading slash) → SHA-1, as sent with the digests. */
  files: Map<string, string>;
  /** Function name → SHA-256, as sent with the digests. */
  functions: Map<string, string>;
  /** Digests the stand-in asked for and has not received yet. */
  required: Set<string>;
  requiredFunctions: Set<string>;
  /** What was uploaded to this deploy, in order. */
  uploads: UploadedFile[];
  functionUploads: UploadedFile[];
  /** Deploy-specific environment variables sent with the digests (`environment`). */
  environment: unknown[];
  locked: boolean;
  error_message: string | null;
  created_at: string;
  updated_at: string;
  published_at: string | null;
  deleted: boolean;
}

export interface AddSiteOptions {
  name: string;
  id?: string;
  account_slug?: string;
  env?: EnvVar[];
}

export interface NetlifyStandin {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `http://127.0.0.1:PORT/api/v1` — what NETLIFY_API_URL or DEPLOY_STS_NETLIFY_API_URL point at. */
  apiUrl: string;
  /** The personal access token the stand-in accepts (`Authorization: Bearer <token>`). */
  token: string;
  requests: RecordedRequest[];
  sites: Map<string, StandinSite>;
  deploys: Map<string, StandinDeploy>;
  addSite(options: AddSiteOptions): StandinSite;
  /** The site's published deploy, or undefined. */
  published(siteId: string): StandinDeploy | undefined;
  deploysOf(siteId: string): StandinDeploy[];
  /** The answer a client would get for the deploy (the documented `deploy` shape). */
  deployJson(deploy: StandinDeploy): Record<string, unknown>;
  siteJson(site: StandinSite): Record<string, unknown>;
  /**
   * Answer the next requests yourself (tests of what a client of this API must survive: extra headers, redirects,
   * stalls). The request is recorded first; return true when you answered it, false to let the stand-in answer.
   * `undefined` removes the override.
   */
  intercept(handler: Intercept | undefined): void;
  close(): Promise<void>;
}

export type Intercept = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest) => boolean;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const now = () => new Date().toISOString();

export async function startNetlifyStandin(options: { token?: string } = {}): Promise<NetlifyStandin> {
  const token = options.token ?? `nfp_standin_${randomBytes(16).toString('hex')}`;
  const requests: RecordedRequest[] = [];
  const sites = new Map<string, StandinSite>();
  const deploys = new Map<string, StandinDeploy>();
  /** Digests already uploaded (any deploy, any site): Netlify does not ask for content it has. */
  const stored = new Set<string>();
  let origin = '';
  let intercepted: Intercept | undefined;

  const account = { id: '5f1c0f3e8a1b2c3d4e5f6a7b', name: 'Acme', slug: 'acme', type: 'team' };

  function addSite(opts: AddSiteOptions): StandinSite {
    const site: StandinSite = {
      id: opts.id ?? randomUUID(),
      name: opts.name,
      account_id: account.id,
      account_slug: opts.account_slug ?? account.slug,
      account_name: account.name,
      created_at: now(),
      updated_at: now(),
      publishedDeployId: null,
      publishHistory: [],
      env: opts.env ?? [],
      password: `site-password-${randomBytes(6).toString('hex')}`,
      deploy_hook: `https://api.netlify.com/build_hooks/${randomBytes(12).toString('hex')}`,
      hooks_access_token: `hooks-token-${randomBytes(12).toString('hex')}`,
      deleted: false,
    };
    sites.set(site.id, site);
    return site;
  }

  function siteHost(site: StandinSite): string {
    return `${site.name}.netlify.app`;
  }

  function deployJson(d: StandinDeploy): Record<string, unknown> {
    const site = sites.get(d.site_id)!;
    const host = siteHost(site);
    const prefix = d.branch ?? d.id;
    return {
      id: d.id,
      site_id: d.site_id,
      user_id: '5f1c0f3e8a1b2c3d4e5f6a70',
      build_id: null,
      state: d.state,
      name: site.name,
      url: `http://${host}`,
      ssl_url: `https://${host}`,
      admin_url: `https://app.netlify.com/projects/${site.name}`,
      deploy_url: `http://${prefix}--${host}`,
      deploy_ssl_url: `https://${prefix}--${host}`,
      screenshot_url: null,
      review_id: null,
      draft: d.draft,
      required: [...d.required],
      required_functions: [...d.requiredFunctions],
      error_message: d.error_message,
      branch: d.branch,
      commit_ref: null,
      commit_url: null,
      skipped: null,
      created_at: d.created_at,
      updated_at: d.updated_at,
      published_at: d.published_at,
      title: d.title,
      context: d.context,
      locked: d.locked,
      review_url: null,
      framework: null,
      function_schedules: [],
    };
  }

  function siteJson(site: StandinSite): Record<string, unknown> {
    const host = siteHost(site);
    const published = site.publishedDeployId === null ? null : deploys.get(site.publishedDeployId);
    return {
      id: site.id,
      state: 'current',
      plan: 'nf_team_dev',
      name: site.name,
      custom_domain: null,
      domain_aliases: [],
      password: site.password,
      notification_email: 'owner@acme.example',
      url: `http://${host}`,
      ssl_url: `https://${host}`,
      admin_url: `https://app.netlify.com/projects/${site.name}`,
      screenshot_url: null,
      created_at: site.created_at,
      updated_at: site.updated_at,
      user_id: '5f1c0f3e8a1b2c3d4e5f6a70',
      ssl: true,
      force_ssl: true,
      managed_dns: true,
      deploy_url: published ? `http://${published.id}--${host}` : `http://${host}`,
      published_deploy: published ? deployJson(published) : null,
      account_id: site.account_id,
      account_name: site.account_name,
      account_slug: site.account_slug,
      git_provider: null,
      deploy_hook: site.deploy_hook,
      capabilities: {},
      processing_settings: { html: { pretty_urls: true } },
      build_settings: { cmd: '', dir: '', env: { LEGACY_SECRET: `legacy-${site.hooks_access_token}` } },
      id_domain: `${site.id}.netlify.app`,
      default_hooks_data: { access_token: site.hooks_access_token },
      build_image: 'noble',
      functions_region: 'us-east-2',
      use_envelope: true,
    };
  }

  function site(id: string): StandinSite {
    const found = sites.get(id);
    if (!found || found.deleted) throw new HttpError(404, 'Not Found');
    return found;
  }

  function deploy(id: string): StandinDeploy {
    const found = deploys.get(id);
    if (!found || found.deleted || sites.get(found.site_id)?.deleted) throw new HttpError(404, 'Not Found');
    return found;
  }

  function publish(s: StandinSite, d: StandinDeploy): void {
    d.published_at = now();
    s.publishedDeployId = d.id;
    s.publishHistory.push(d.id);
    s.updated_at = now();
  }

  /** A deploy is ready when nothing it asked for is missing; a ready production deploy is published. */
  function settle(d: StandinDeploy): void {
    if (d.state === 'error' || d.state === 'ready' || d.state === 'new' || d.state === 'preparing') return;
    if (d.required.size === 0 && d.requiredFunctions.size === 0) {
      d.state = 'ready';
      d.updated_at = now();
      if (d.context === 'production' && !d.locked) publish(sites.get(d.site_id)!, d);
    } else {
      d.state = d.uploads.length + d.functionUploads.length > 0 ? 'uploading' : 'prepared';
    }
  }

  function diff(d: StandinDeploy): void {
    d.required = new Set([...new Set(d.files.values())].filter((sha) => !stored.has(sha)));
    d.requiredFunctions = new Set([...new Set(d.functions.values())].filter((sha) => !stored.has(sha)));
    d.state = 'prepared';
    settle(d);
  }

  // ---- operations -------------------------------------------------------------------------------------------------

  function createDeploy(s: StandinSite, query: URLSearchParams, body: Record<string, unknown>): StandinDeploy {
    const draft = body.draft === true;
    const branch = typeof body.branch === 'string' && body.branch !== '' ? body.branch : null;
    let id: string;
    do id = randomBytes(12).toString('hex');
    while (deploys.has(id));
    const d: StandinDeploy = {
      id,
      site_id: s.id,
      state: 'new',
      draft,
      branch,
      context: draft ? 'deploy-preview' : branch !== null ? 'branch-deploy' : 'production',
      title: query.get('title'),
      deploy_source: typeof body.deploy_source === 'string' ? body.deploy_source : null,
      async: false,
      files: new Map(),
      functions: new Map(),
      required: new Set(),
      requiredFunctions: new Set(),
      uploads: [],
      functionUploads: [],
      environment: [],
      locked: false,
      error_message: null,
      created_at: now(),
      updated_at: now(),
      published_at: null,
      deleted: false,
    };
    deploys.set(id, d);
    if (body.files !== undefined || body.functions !== undefined) setDigests(d, body);
    return d;
  }

  function setDigests(d: StandinDeploy, body: Record<string, unknown>): void {
    const files = body.files ?? {};
    const functions = body.functions ?? {};
    if (typeof files !== 'object' || files === null || Array.isArray(files)) throw new HttpError(422, 'files must be an object of path → SHA-1');
    if (typeof functions !== 'object' || functions === null || Array.isArray(functions)) {
      throw new HttpError(422, 'functions must be an object of name → SHA-256');
    }
    d.files = new Map();
    for (const [path, sha] of Object.entries(files)) {
      if (typeof sha !== 'string' || !SHA1.test(sha)) throw new HttpError(422, `files[${JSON.stringify(path)}] is not a SHA-1 digest`);
      d.files.set(path.replace(/^\/+/, ''), sha);
    }
    d.functions = new Map();
    for (const [name, sha] of Object.entries(functions)) {
      if (typeof sha !== 'string' || !SHA256.test(sha)) throw new HttpError(422, `functions[${JSON.stringify(name)}] is not a SHA-256 digest`);
      d.functions.set(name, sha);
    }
    if (Array.isArray(body.environment)) d.environment = body.environment;
    d.async = body.async === true;
    d.updated_at = now();
    if (d.async) d.state = 'preparing';
    else diff(d);
  }

  /** Stream an upload into a hash, never holding the body; resolve its size and digest. */
  function hashUpload(req: IncomingMessage, algorithm: 'sha1' | 'sha256'): Promise<{ size: number; sha: string }> {
    return new Promise((resolve, reject) => {
      const hash = createHash(algorithm);
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => resolve({ size, sha: hash.digest('hex') }));
      req.on('error', reject);
    });
  }

  async function uploadFile(req: IncomingMessage, d: StandinDeploy, encodedPath: string, record: RecordedRequest) {
    const path = decodePath(encodedPath);
    const expected = d.files.get(path);
    const { size, sha } = await hashUpload(req, 'sha1');
    record.bodyBytes = size;
    if (d.state === 'error' || d.state === 'ready') throw new HttpError(422, `deploy ${d.id} is ${d.state}: it takes no more files`);
    if (expected === undefined) throw new HttpError(404, `${path} is not part of deploy ${d.id}`);
    if (sha !== expected) throw new HttpError(422, `${path}: content SHA-1 ${sha} does not match the digest ${expected} sent for it`);
    stored.add(sha);
    d.required.delete(sha);
    d.uploads.push({ path, sha, size });
    d.updated_at = now();
    settle(d);
    return { id: sha, path: `/${path}`, sha, mime_type: 'application/octet-stream', size };
  }

  async function uploadFunction(req: IncomingMessage, d: StandinDeploy, encodedName: string, record: RecordedRequest) {
    const name = decodeURIComponent(encodedName);
    const expected = d.functions.get(name);
    const { size, sha } = await hashUpload(req, 'sha256');
    record.bodyBytes = size;
    if (d.state === 'error' || d.state === 'ready') throw new HttpError(422, `deploy ${d.id} is ${d.state}: it takes no more functions`);
    if (expected === undefined) throw new HttpError(404, `function ${name} is not part of deploy ${d.id}`);
    if (sha !== expected) throw new HttpError(422, `function ${name}: content SHA-256 ${sha} does not match the digest ${expected} sent for it`);
    stored.add(sha);
    d.requiredFunctions.delete(sha);
    d.functionUploads.push({ path: name, sha, size });
    d.updated_at = now();
    settle(d);
    return { id: sha, name, sha, region: 'us-east-2' };
  }

  // ---- routing ----------------------------------------------------------------------------------------------------

  type Handler = (ctx: {
    req: IncomingMessage;
    params: string[];
    query: URLSearchParams;
    json: () => Promise<Record<string, unknown>>;
    record: RecordedRequest;
  }) => Promise<[number, unknown]> | [number, unknown];

  const routes: [string, RegExp, Handler][] = [
    ['GET', /^\/user$/, () => [200, { id: '5f1c0f3e8a1b2c3d4e5f6a70', uid: 'u1', full_name: 'Site Owner', email: 'owner@acme.example', site_count: sites.size }]],
    ['GET', /^\/accounts$/, () => [200, [{ ...account, capabilities: {}, billing_name: 'Acme', billing_email: 'billing@acme.example' }]]],
    [
      'GET',
      /^\/sites$/,
      ({ query }) => {
        const name = query.get('name');
        const list = [...sites.values()].filter((s) => !s.deleted && (name === null || s.name.includes(name)));
        return [200, list.map(siteJson)];
      },
    ],
    ['GET', /^\/sites\/([^/]+)$/, ({ params }) => [200, siteJson(site(params[0]!))]],
    [
      'PATCH',
      /^\/sites\/([^/]+)$/,
      async ({ params, json }) => {
        const s = site(params[0]!);
        const body = await json();
        if (typeof body.name === 'string') s.name = body.name;
        s.updated_at = now();
        return [200, siteJson(s)];
      },
    ],
    [
      'DELETE',
      /^\/sites\/([^/]+)$/,
      ({ params }) => {
        site(params[0]!).deleted = true;
        return [204, undefined];
      },
    ],
    [
      'GET',
      /^\/accounts\/([^/]+)\/env$/,
      ({ params, query }) => {
        if (params[0] !== account.slug && params[0] !== account.id) throw new HttpError(404, 'Not Found');
        const siteId = query.get('site_id');
        return [200, siteId === null ? [] : site(siteId).env];
      },
    ],
    ['GET', /^\/api\/v1\/sites\/([^/]+)\/env$/, ({ params }) => [200, site(params[0]!).env]],
    [
      'GET',
      /^\/accounts\/([^/]+)\/env\/([^/]+)$/,
      ({ params, query }) => {
        const siteId = query.get('site_id');
        const found = siteId === null ? undefined : site(siteId).env.find((e) => e.key === decodeURIComponent(params[1]!));
        if (!found) throw new HttpError(404, 'Not Found');
        return [200, found];
      },
    ],
    [
      'GET',
      /^\/sites\/([^/]+)\/deploys$/,
      ({ params }) => [200, [...deploys.values()].filter((d) => d.site_id === site(params[0]!).id && !d.deleted).reverse().map(deployJson)],
    ],
    [
      'POST',
      /^\/sites\/([^/]+)\/deploys$/,
      async ({ params, query, json }) => {
        const s = site(params[0]!);
        return [200, deployJson(createDeploy(s, query, await json()))];
      },
    ],
    [
      'GET',
      /^\/sites\/([^/]+)\/deploys\/([^/]+)$/,
      ({ params }) => {
        const s = site(params[0]!);
        const d = deploy(params[1]!);
        if (d.site_id !== s.id) throw new HttpError(404, 'Not Found');
        if (d.state === 'preparing') diff(d);
        return [200, deployJson(d)];
      },
    ],
    [
      'PUT',
      /^\/sites\/([^/]+)\/deploys\/([^/]+)$/,
      async ({ params, json }) => {
        const s = site(params[0]!);
        const d = deploy(params[1]!);
        if (d.site_id !== s.id) throw new HttpError(404, 'Not Found');
        if (d.state !== 'new') throw new HttpError(422, `deploy ${d.id} already has its files (state ${d.state})`);
        setDigests(d, await json());
        return [200, deployJson(d)];
      },
    ],
    [
      'DELETE',
      /^\/sites\/([^/]+)\/deploys\/([^/]+)$/,
      ({ params }) => {
        const d = deploy(params[1]!);
        if (d.site_id !== site(params[0]!).id) throw new HttpError(404, 'Not Found');
        d.deleted = true;
        return [204, undefined];
      },
    ],
    [
      'GET',
      /^\/deploys\/([^/]+)$/,
      ({ params }) => {
        const d = deploy(params[0]!);
        if (d.state === 'preparing') diff(d);
        return [200, deployJson(d)];
      },
    ],
    [
      'DELETE',
      /^\/deploys\/([^/]+)$/,
      ({ params }) => {
        deploy(params[0]!).deleted = true;
        return [204, undefined];
      },
    ],
    [
      'POST',
      /^\/deploys\/([^/]+)\/cancel$/,
      ({ params }) => {
        const d = deploy(params[0]!);
        if (d.state === 'ready') throw new HttpError(422, `deploy ${d.id} is ready and cannot be cancelled`);
        d.state = 'error';
        d.error_message = 'Canceled';
        d.updated_at = now();
        return [201, deployJson(d)];
      },
    ],
    [
      'POST',
      /^\/deploys\/([^/]+)\/(lock|unlock)$/,
      ({ params }) => {
        const d = deploy(params[0]!);
        d.locked = params[1] === 'lock';
        return [200, deployJson(d)];
      },
    ],
    [
      'POST',
      /^\/sites\/([^/]+)\/deploys\/([^/]+)\/restore$/,
      ({ params }) => {
        const s = site(params[0]!);
        const d = deploy(params[1]!);
        if (d.site_id !== s.id) throw new HttpError(404, 'Not Found');
        if (d.state !== 'ready') throw new HttpError(422, `deploy ${d.id} is ${d.state}; only a ready deploy can be published`);
        publish(s, d);
        return [201, deployJson(d)];
      },
    ],
    [
      'PUT',
      /^\/sites\/([^/]+)\/rollback$/,
      ({ params }) => {
        const s = site(params[0]!);
        const history = s.publishHistory.filter((id) => id !== s.publishedDeployId);
        const previous = history.at(-1);
        if (previous === undefined) throw new HttpError(422, 'there is no earlier published deploy to roll back to');
        publish(s, deploy(previous));
        return [204, undefined];
      },
    ],
    ['PUT', /^\/deploys\/([^/]+)\/files\/(.+)$/, async ({ req, params, record }) => [200, await uploadFile(req, deploy(params[0]!), params[1]!, record)]],
    [
      'PUT',
      /^\/deploys\/([^/]+)\/functions\/([^/]+)$/,
      async ({ req, params, record }) => [200, await uploadFunction(req, deploy(params[0]!), params[1]!, record)],
    ],
  ];

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const authorization = req.headers.authorization;
    if (authorization !== `Bearer ${token}`) throw new HttpError(401, 'Access Denied: Invalid or expired access token');
    if (!record.path.startsWith('/api/v1/')) throw new HttpError(404, 'Not Found');
    const path = record.path.slice('/api/v1'.length);
    for (const [method, pattern, handler] of routes) {
      const match = pattern.exec(path);
      if (!match) continue;
      if (req.method !== method) continue;
      const json = () => readJson(req, record);
      const [status, body] = await handler({ req, params: match.slice(1), query: record.query, json, record });
      send(res, record, status, body);
      return;
    }
    throw new HttpError(404, 'Not Found');
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://standin.invalid');
    const record: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: { ...req.headers },
      bodyBytes: 0,
      status: 0,
    };
    requests.push(record);
    if (intercepted?.(req, res, record)) return;
    handle(req, res, record).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      // Drain what is left of the body so the client sees the answer rather than a reset.
      req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
      req.resume();
      send(res, record, status, { code: status, message });
    });
  });

  function send(res: ServerResponse, record: RecordedRequest, status: number, body: unknown): void {
    record.status = status;
    if (res.headersSent) return;
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    apiUrl: `${origin}/api/v1`,
    token,
    requests,
    sites,
    deploys,
    addSite,
    published(siteId) {
      const id = sites.get(siteId)?.publishedDeployId;
      return id ? deploys.get(id) : undefined;
    },
    deploysOf(siteId) {
      return [...deploys.values()].filter((d) => d.site_id === siteId);
    },
    deployJson,
    siteJson,
    intercept(handler) {
      intercepted = handler;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Read a JSON request body (bounded); an empty body is `{}`. */
function readJson(req: IncomingMessage, record: RecordedRequest): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      record.bodyBytes = size;
      if (size <= MAX_JSON_BODY) chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > MAX_JSON_BODY) return reject(new HttpError(413, `request body larger than ${MAX_JSON_BODY} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        const parsed: unknown = JSON.parse(text);
        record.json = parsed;
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          return reject(new HttpError(422, 'the request body must be a JSON object'));
        }
        resolve(parsed as Record<string, unknown>);
      } catch {
        reject(new HttpError(400, 'the request body is not valid JSON'));
      }
    });
  });
}

/** `a/b%20c.html` → `a/b c.html`; refuses what no deploy path can be. */
function decodePath(encoded: string): string {
  let path: string;
  try {
    path = encoded.split('/').map(decodeURIComponent).join('/');
  } catch {
    throw new HttpError(400, 'the file path holds a malformed percent-encoding');
  }
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new HttpError(400, `invalid file path ${JSON.stringify(path)}`);
  return path;
}
