/**
 * The HTTP surface: RFC 8693 /token, RFC 7662 /introspect, RFC 7009 /revoke, RFC 8414 metadata, the JWKS and
 * health probes. Every answer is JSON; errors are RFC 6749 §5.2 objects with no stack trace and no HTML.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { GRANT_TYPE } from '../../shared/wire.js';
import { introspection } from '../access-token/claims.js';
import { verifyAccessToken } from '../access-token/verify.js';
import { OAuthError, rateLimited, unavailable } from '../errors.js';
import { exchange, type ExchangeDeps } from '../exchange.js';
import type { KeyRing } from '../keys/key-ring.js';
import type { Metrics } from '../metrics.js';
import { clientIp } from '../client-ip.js';
import { RateLimiter, addressKey } from '../rate-limit.js';
import type { AuditRecord, Storage } from '../storage/types.js';
import { deniedRecord } from '../token-exchange/audit.js';
import { MAX_PARAMETERS, isUtf8Charset, jsonBodyProblem } from './json-body.js';

export const BODY_LIMIT_BYTES = 32 * 1024;

export interface AppDeps extends ExchangeDeps {
  keys: KeyRing;
  storage: Storage;
  /** The audience GitHub tokens must carry (advertised in metadata for clients such as the Action). */
  subjectAudience: string;
  /** sha256 of the operator's introspection secret, when configured. */
  introspectSecretHash: Buffer | undefined;
  trustProxy: number;
  /** Readiness: rejects when a dependency (storage, issuer keys) is not usable. */
  ready(): Promise<void>;
  metrics?: Metrics;
  /** Per client IP limit on /token. */
  ipLimiter?: RateLimiter;
  log?(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
  /**
   * The one structured line per request (method, path, status, ms, request id, and the decision for /token), its
   * fields never a token; default: `log(level, 'request', fields)`.
   */
  logRequest?(level: 'info' | 'error', fields: Record<string, unknown>): void;
}

const NO_STORE = 'no-store';
const ROUTES = new Set(['/token', '/introspect', '/revoke', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/healthz', '/readyz']);
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** What a request's log line needs, from its start to its finish (in `res.locals.request`). */
interface RequestContext {
  id: string;
  started: number;
  /** The client's address (client-ip.ts); none when the socket has closed (the log line then has no client_ip). */
  ip: string | undefined;
  /** `req.path`, read once (Express parses the URL at each read). */
  path: string;
  /**
   * Headers of a POST /token answer not yet set: X-Request-Id (`id`) and these, as name, value, name, value… (the
   * app's list, not copied). `sendJson` writes them with the status line in one `writeHead`, for speed (`setHeader`
   * validates and lower-cases each name and keeps an entry for it, and writing the head lower-cases them again: about
   * 1.7 KB allocated and 1.5 µs per request for these ten). Any other answer sets them first (`setPendingHeaders`).
   */
  pending: readonly string[] | undefined;
  /** The decision of a /token request: the audit record, or the reason of a refusal before the exchange ran. */
  decision: AuditRecord | { result: 'denied'; reason: string } | undefined;
}

/** The endpoints that are never cached, that the address limit covers and that take POST alone. */
const OAUTH_ENDPOINTS = ['/token', '/introspect', '/revoke'];

/** The OAuth endpoint a path is, or is under (as a mount matches it: `/token`, `/token/`, `/token/x`). */
function oauthEndpoint(path: string): string | undefined {
  for (const endpoint of OAUTH_ENDPOINTS) {
    if (path.startsWith(endpoint) && (path.length === endpoint.length || path[endpoint.length] === '/')) return endpoint;
  }
  return undefined;
}

/**
 * The fields of a request's log line, with the decision of a /token request. Never holds a token. One object literal
 * per shape, for speed: spreading a decision object into the line cost 0.2 µs and 340 bytes per request.
 */
function lineFields(context: RequestContext, method: string, path: string, status: number): Record<string, unknown> {
  const request_id = context.id;
  const ms = Math.round((performance.now() - context.started) * 10) / 10;
  const client_ip = context.ip;
  const a = context.decision;
  if (a === undefined) return { request_id, method, path, status, ms, client_ip };
  if (!('detail' in a)) return { request_id, method, path, status, ms, client_ip, result: a.result, reason: a.reason };
  return {
    request_id, method, path, status, ms, client_ip,
    result: a.result, reason: a.reason, site: a.site, rule: a.rule, context: a.context, repository: a.repository,
    repository_id: a.repositoryId, event_name: a.eventName, ref: a.ref, subject_jti: a.subjectJti, token_jti: a.tokenJti,
  };
}

/** Sets the headers the front middleware left pending (see `RequestContext.pending`), for an answer written otherwise. */
function setPendingHeaders(res: Response): void {
  const context = res.locals.request as RequestContext | undefined;
  const pending = context?.pending;
  if (pending === undefined) return;
  context!.pending = undefined;
  res.setHeader('X-Request-Id', context!.id);
  for (let i = 0; i < pending.length; i += 2) res.setHeader(pending[i]!, pending[i + 1]!);
}

const NO_HEADERS: readonly string[] = [];

/**
 * A JSON answer, byte for byte as Express's `res.json` writes it (`json spaces` 0, no replacer, no escape, no ETag)
 * without its send path, for speed: it parses and formats the content type twice, looks up its charset, and copies
 * a body of 1000 characters or more (every granted /token answer) into a Buffer. `extra`: more headers, as name,
 * value, name, value…
 */
function sendJson(res: Response, status: number, value: unknown, extra: readonly string[] = NO_HEADERS): void {
  const body = JSON.stringify(value);
  const length = String(Buffer.byteLength(body));
  const context = res.locals.request as RequestContext | undefined;
  const pending = context?.pending;
  if (pending !== undefined) {
    context!.pending = undefined;
    // One array of the final length (the pending list is the app's, shared by every request).
    res.writeHead(status, ['X-Request-Id', context!.id, ...pending, ...extra, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', length]);
  } else {
    for (let i = 0; i < extra.length; i += 2) res.setHeader(extra[i]!, extra[i + 1]!);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', length);
  }
  res.end(body);
}

const CHALLENGE = ['WWW-Authenticate', 'Bearer realm="deploy-sts", Basic realm="deploy-sts"'];

function send(res: Response, error: OAuthError): void {
  const extra = error.retryAfter !== undefined ? ['Retry-After', String(error.retryAfter)] : [];
  if (error.status === 401) extra.push(...CHALLENGE);
  sendJson(res, error.status, error.toJSON(), extra);
}

function requireForm(req: Request): void {
  if (!req.is('application/x-www-form-urlencoded') && !req.is('application/json')) {
    throw new OAuthError('invalid_request', 'Content-Type must be application/x-www-form-urlencoded (or application/json)', 'bad_content_type');
  }
}

/** A storage failure outside /token is still a 503 (fail closed, retry later), never a 500. */
async function storageCall<T>(call: () => Promise<T>, what: string): Promise<T> {
  try {
    return await call();
  } catch {
    throw unavailable(what, 'storage_unavailable');
  }
}

function singleToken(body: unknown): string {
  const token = (body as Record<string, unknown> | undefined)?.token;
  if (typeof token !== 'string' || token.length === 0) {
    throw new OAuthError('invalid_request', 'the token parameter is missing or given more than once', 'malformed_request');
  }
  return token;
}

function bearer(req: Request): string | undefined {
  const header = req.get('authorization');
  const match = header ? /^Bearer ([^\s]+)$/i.exec(header) : null;
  return match?.[1];
}

function operatorAuthenticated(req: Request, secretHash: Buffer | undefined): boolean {
  if (!secretHash) return false;
  const header = req.get('authorization') ?? '';
  let presented: string | undefined;
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    presented = decoded.slice(decoded.indexOf(':') + 1);
  } else {
    presented = bearer(req);
  }
  if (!presented) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), secretHash);
}

/** One line about a failing storage at most this often: a storage that has stopped fails every request. */
const STORAGE_FAILURE_LOG_MS = 10_000;

/**
 * Logs why the storage could not record a /token decision (the answer only says the audit log is unavailable): the
 * first failure at once, later ones at most every STORAGE_FAILURE_LOG_MS, each line counting the failures left out.
 */
function storageFailureLog(log: AppDeps['log']): (failure: unknown) => void {
  let loggedAt = -Infinity;
  let leftOut = 0;
  return (failure) => {
    const now = performance.now();
    if (now - loggedAt < STORAGE_FAILURE_LOG_MS) {
      leftOut++;
      return;
    }
    const error = failure instanceof Error ? failure.message : String(failure);
    log?.('error', 'the audit log could not be written; no token was issued', leftOut > 0 ? { error, left_out: leftOut } : { error });
    loggedAt = now;
    leftOut = 0;
  };
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Express's own reading of X-Forwarded-For; the service reads the client's address with client-ip.ts instead (one rule for
  // the audit, the logs and the limits), and sets this only so that anything of Express's that reads req.ip agrees.
  app.set('trust proxy', deps.trustProxy);
  // Exactly `/token`, not `/TOKEN` or `/token/`: one path per endpoint, so every /token answer is audited.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  // At most one audit row per client address per minute for requests refused by the address limit.
  const refusalAuditSampler = new RateLimiter({ perMinute: 1 });
  const storageFailed = storageFailureLog(deps.log);
  app.set('json spaces', 0);

  // One middleware for what every request needs (request id, security headers, the log line when the answer is
  // finished) and what the OAuth endpoints need (no caching, the address limit, POST only): each layer of Express's
  // router costs a dispatch per request, and these used to be eight.
  const headers: [string, string][] = [
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ...(deps.issuer.startsWith('https://') ? [['Strict-Transport-Security', 'max-age=63072000'] as [string, string]] : []),
  ];
  // The same and the OAuth endpoints' two, in the order they are set below, for a POST /token answer's `pending`.
  const tokenHeaders = [...headers.flat(), 'Cache-Control', NO_STORE, 'Pragma', 'no-cache'];
  const logRequest = deps.logRequest ?? ((level, fields) => deps.log?.(level, 'request', fields));
  function finished(this: Response): void {
    const context = this.locals.request as RequestContext;
    const route = ROUTES.has(context.path) ? context.path : 'other';
    deps.metrics?.httpRequests.inc({ route, status: String(this.statusCode) });
    logRequest(this.statusCode >= 500 ? 'error' : 'info', lineFields(context, this.req.method, route, this.statusCode));
  }
  app.use((req, res, next) => {
    const started = performance.now();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const path = req.path;
    const context: RequestContext = { id, started, ip: clientIp(req, deps.trustProxy) ?? undefined, path, decision: undefined, pending: undefined };
    res.locals.request = context;
    res.on('finish', finished);
    const endpoint = oauthEndpoint(path);
    if (path === '/token' && req.method === 'POST') {
      context.pending = tokenHeaders;
    } else {
      res.setHeader('X-Request-Id', id);
      for (const [name, value] of headers) res.setHeader(name, value);
      if (endpoint === undefined) return next();
      res.setHeader('Cache-Control', NO_STORE);
      res.setHeader('Pragma', 'no-cache');
    }
    // The address limit comes first, before any parsing or method check: it also bounds secret guessing at
    // /introspect and audit-log growth from junk requests.
    const decision = deps.ipLimiter?.take(addressKey(context.ip ?? 'unknown'));
    if (decision && !decision.allowed) {
      deps.metrics?.rateLimited.inc({ kind: 'ip' });
      return next(rateLimited(`too many requests from ${context.ip}; retry in ${decision.retryAfter} s`, decision.retryAfter));
    }
    if (path !== endpoint || req.method === 'POST') return next();
    res.setHeader('Allow', 'POST');
    next(new OAuthError('invalid_request', `${req.method} is not allowed on ${endpoint}; use POST with an application/x-www-form-urlencoded body`, 'method_not_allowed', 405));
  });
  const parsers = [
    express.urlencoded({ extended: false, limit: BODY_LIMIT_BYTES, parameterLimit: MAX_PARAMETERS }),
    express.json({
      limit: BODY_LIMIT_BYTES,
      strict: true,
      // Duplicated keys and too many keys are refused as in forms (JSON.parse would keep the last value silently).
      verify(req, _res, buf) {
        // The scan reads the bytes as UTF-8, so the body must be UTF-8: body-parser would decode any utf-* charset
        // (utf-16le…), in which the scan finds no key and duplicated or surplus keys would pass.
        if (!isUtf8Charset(req.headers['content-type'])) throw Object.assign(new Error('charset'), { status: 415, type: 'charset.unsupported' });
        const problem = jsonBodyProblem(buf.toString('utf8'));
        if (problem === undefined) return;
        throw Object.assign(new Error(problem.kind), {
          status: 400,
          type: problem.kind === 'duplicate_key' ? 'json.duplicate.key' : 'parameters.too.many',
          key: problem.kind === 'duplicate_key' ? problem.key : undefined,
        });
      },
    }),
  ];

  app.post('/token', ...parsers, async (req, res, next) => {
    const started = performance.now();
    try {
      requireForm(req);
    } catch (error) {
      return next(error);
    }
    const context = res.locals.request as RequestContext;
    const outcome = await exchange(req.body, deps, context.ip ?? null);
    const seconds = (performance.now() - started) / 1000;
    if (deps.metrics) {
      const a = outcome.audit;
      const known = a.rule !== null; // site and rule labels only for names from the loaded policies
      deps.metrics.exchanges.inc({ result: a.result, site: known ? (a.site ?? '-') : '-', rule: a.rule ?? '-' });
      if (a.result === 'denied') deps.metrics.denials.inc({ reason: a.reason });
      if (a.reason === 'rate_limited') deps.metrics.rateLimited.inc({ kind: 'repository' });
      deps.metrics.tokenLatency.observe({ result: a.result }, seconds);
    }
    context.decision = outcome.audit;
    if (outcome.granted) {
      sendJson(res, 200, outcome.response);
    } else {
      if (outcome.storageFailure !== undefined) storageFailed(outcome.storageFailure);
      send(res, outcome.error);
    }
  });

  app.post('/introspect', ...parsers, async (req, res, next) => {
    try {
      requireForm(req);
      const token = singleToken(req.body);
      const presented = bearer(req);
      const asHolder = presented !== undefined && presented === token;
      if (!asHolder && !operatorAuthenticated(req, deps.introspectSecretHash)) {
        throw new OAuthError(
          'invalid_client',
          'introspection requires authentication: present the token itself as a Bearer credential, or the operator introspection secret (DEPLOY_STS_INTROSPECT_SECRET_FILE)',
          'unauthenticated',
        );
      }
      const claims = await verifyAccessToken(token, deps.keys, deps.issuer, { now: deps.now() });
      if (!claims || (await storageCall(() => deps.storage.isRevoked(claims.jti), 'the revocation list'))) {
        res.json({ active: false });
        return;
      }
      res.json(introspection(claims));
    } catch (error) {
      next(error);
    }
  });

  app.post('/revoke', ...parsers, async (req, res, next) => {
    try {
      requireForm(req);
      const token = singleToken(req.body);
      // Possession of one of our tokens is enough to revoke it: revoking a leaked token is always welcome.
      const claims = await verifyAccessToken(token, deps.keys, deps.issuer, { allowExpired: true });
      if (claims && claims.exp > deps.now()) {
        await storageCall(() => deps.storage.revoke(claims.jti, claims.exp), 'the revocation list');
        deps.metrics?.revocations.inc();
      }
      res.status(200).json({});
    } catch (error) {
      next(error);
    }
  });

  app.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(deps.keys.jwks());
  });

  app.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json({
      issuer: deps.issuer,
      token_endpoint: `${deps.issuer}/token`,
      jwks_uri: `${deps.issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${deps.issuer}/introspect`,
      revocation_endpoint: `${deps.issuer}/revoke`,
      grant_types_supported: [GRANT_TYPE],
      token_endpoint_auth_methods_supported: ['none'],
      introspection_endpoint_auth_methods_supported: ['bearer', 'client_secret_basic'],
      revocation_endpoint_auth_methods_supported: ['none'],
      scopes_supported: ['sites:read', 'deployments:read', 'deployments:write'],
      response_types_supported: [],
      subject_token_audience: deps.subjectAudience,
    });
  });

  // No /metrics here: the metrics name sites and their activity, so they have their own listener
  // (DEPLOY_STS_METRICS_LISTEN, http/metrics-server.ts); on the public port /metrics is a 404 like any unknown path.

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready();
      res.json({ status: 'ready' });
    } catch (error) {
      deps.log?.('warn', 'not ready', { error: (error as Error).message });
      res.status(503).json({ status: 'not ready', reason: 'storage is unavailable or the service is shutting down' });
    }
  });

  // Not an OAuth error (no RFC code fits a missing endpoint), in the same JSON shape.
  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', error_description: `no such endpoint: ${req.method} ${req.path}` });
  });

  // The last word on every error: JSON, no stack. Body-parser errors carry `type` and `status`.
  app.use(async (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    setPendingHeaders(res);
    let oauth: OAuthError;
    const e = error as { type?: string; status?: number };
    if (error instanceof OAuthError) oauth = error;
    else if (e?.type === 'entity.too.large') {
      oauth = new OAuthError('invalid_request', `the request body is larger than ${BODY_LIMIT_BYTES} bytes`, 'too_large', 413);
    } else if (e?.type === 'json.duplicate.key') {
      const key = String((error as { key?: unknown }).key);
      const shownKey = JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
      oauth = new OAuthError('invalid_request', `parameter ${shownKey} must appear once (the JSON body gives it more than once)`, 'duplicate_parameter');
    } else if (e?.type === 'parameters.too.many') {
      oauth = new OAuthError('invalid_request', 'the request has too many parameters', 'too_many_parameters', 413);
    } else if (e?.status === 400 || e?.status === 415) {
      oauth = new OAuthError('invalid_request', 'the request body could not be parsed (malformed form or JSON, or an unsupported charset)', 'malformed_body');
    } else {
      deps.log?.('error', 'unhandled error', { path: req.path, error: (error as Error)?.name });
      oauth = new OAuthError('server_error', 'internal error; nothing was issued', 'internal_error');
    }
    const context = res.locals.request as RequestContext;
    const sampledOut = oauth.reason === 'rate_limited' && !refusalAuditSampler.take(addressKey(context.ip ?? 'unknown')).allowed;
    if (req.path === '/token' && !sampledOut) {
      // Refused before the exchange ran: audited by the same builder as every other /token decision.
      const record = deniedRecord({ time: deps.now(), clientIp: context.ip ?? null }, oauth);
      deps.metrics?.denials.inc({ reason: record.reason });
      context.decision = { result: 'denied', reason: record.reason };
      try {
        await deps.storage.appendAudit(record);
      } catch (failure) {
        storageFailed(failure);
        oauth = unavailable('the audit log', 'audit_unavailable');
      }
    }
    if (!res.headersSent) send(res, oauth);
  });

  return app;
}
