/**
 * The deploy gateway's platform-neutral core: one Node request handler for `/gateway/<platform>/<api prefix>/...`.
 *
 * Every request, in order: the path is checked; the bearer token is verified with the service's own key ring (our
 * signature, typ, alg, iss, the platform's audience, exp) and looked up in the revocation list (so a revocation
 * takes effect on the next request; the same storage read fetches the site's stored credential row); the token's
 * site must be bound to this platform in the live policies; the platform module plans the request (forward, answer,
 * or refuse); the token's scope must allow it; a deploy the path names must have been recorded for this site (and,
 * for preview tokens, be a preview deploy); the stored credential is opened. Only then is anything sent upstream:
 * to the configured base URL, with an allowlist of
 * headers and the stored credential as Authorization, the body streamed with backpressure (or, for the JSON bodies
 * the platform rewrites, parsed within a small cap). Nothing is buffered but those JSON bodies; no redirect is
 * followed; every request has a size and a time limit. Every call, forwarded or refused, is audited and logged —
 * never with the token or the credential.
 */
import { createHash, type KeyObject } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { CredentialStore } from '../credentials/store.js';
import { CredentialError, setCommand } from '../credentials/store.js';
import type { PolicySet } from '../policy/types.js';
import type { GatewayAuditRecord, GatewayDeploy, GatewayStorage, StoredCredential } from '../storage/gateway-types.js';
import { checkScope, type DeployTokenClaims } from '../verify/claims.js';
import { DeployTokenError } from '../access-token/errors.js';
import { bearerToken } from '../verify/index.js';
import { verifyDeployToken } from '../verify/token.js';
import { TooLarge, readBounded } from './bounded.js';
import { clientIp } from '../client-ip.js';
import type { GatewayConfig } from '../config.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import type { Forward, GatewayBinding, GatewayPlatform, GatewayRequest, Plan } from './platform.js';
import { checkRequestPath } from './request-path.js';
import { addressKey } from '../rate-limit.js';

export const GATEWAY_PREFIX = '/gateway/';

export interface GatewayDeps {
  platforms: readonly GatewayPlatform[];
  policies(): PolicySet;
  /** The gateway's tables, and (readCall) the revocation list of our tokens. */
  storage: GatewayStorage;
  credentials: CredentialStore;
  /** Our public URL: the tokens' `iss`, and the base of each platform's audience. */
  issuer: string;
  /** The public key of one of our signing keys, by kid. */
  publicKey(kid: string): KeyObject | undefined;
  config: GatewayConfig;
  trustProxy: number;
  /** Unix seconds. */
  now(): number;
  log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>): void;
}

/** What the audit record and the log line say about one call; filled in as the request proceeds. */
interface CallRecord {
  platform: string;
  site: string | null;
  tokenJti: string | null;
  context: DeployTokenClaims['context'] | null;
  route: string;
  deployId: string | null;
  result: GatewayAuditRecord['result'];
  reason: string;
  upstreamStatus: number | null;
  bytesIn: number;
  bytesOut: number;
  detail: string;
  /** The token whose in-flight count this call holds (released when it ends), and whether it holds a JSON slot. */
  holds: { jti: string; json: boolean } | null;
}

/** The request's time limit: `onExpire` (set once there is an upstream request) stops what is in flight. */
interface Deadline {
  expired: boolean;
  onExpire: (() => void) | undefined;
}

/** A refusal or failure, answered in the platform's error shape. */
class Stop extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The refusal of a body past its limit: which body, which limit, and the setting that raises it. */
function tooLarge(route: string, json: boolean, limit: number): Stop {
  return new Stop(413, 'too_large', `deploy-sts refused ${route}: the ${json ? 'JSON ' : ''}body is larger than ${limit} bytes (DEPLOY_STS_GATEWAY_MAX_${json ? 'JSON' : 'BODY'}_BYTES)`);
}

/** A call stopped at its deadline (DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS), and what was still under way. */
function timedOut(route: string, timeoutMs: number, still = ''): Stop {
  return new Stop(504, 'timeout', `deploy-sts stopped ${route} after ${timeoutMs / 1000} s (DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS)${still === '' ? '' : `: ${still}`}`);
}

/** A small map that forgets its oldest entries past `max` (insertion order). */
class Bounded<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}

/** Upstream sockets per bound site: one site's calls (a leaked token's slow uploads) never queue another site's. */
const SOCKETS_PER_SITE = 64;
/**
 * JSON bodies (a deploy's file digests) one token may have in flight at once: each is read whole (up to
 * DEPLOY_STS_GATEWAY_MAX_JSON_BYTES) and parsed, so parallel ones are memory; `netlify deploy` sends one at a time.
 */
const JSON_CALLS_PER_TOKEN = 2;
/** Calls refused before any valid token (junk, a bad token) audited per address per window; the rest are counted. */
const TOKENLESS_AUDITED_PER_WINDOW = 10;
const TOKENLESS_WINDOW_SECONDS = 60;
const TOUCH_EVERY_SECONDS = 60;
const AUDIT_ATTEMPTS = 3;

function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): number {
  const text = JSON.stringify(body);
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(text);
  return Buffer.byteLength(text);
}

export function createGatewayHandler(deps: GatewayDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const platforms = new Map(deps.platforms.map((p) => [p.name, p]));
  // Each platform's base URL, parsed once (config validated it: https, or http on loopback; no query or fragment).
  const upstreamBases = new Map(
    deps.platforms.map((p) => {
      const url = new URL(p.upstreamBase);
      const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const path = url.pathname === '/' ? '' : url.pathname;
      return [p.name, { secure: url.protocol === 'https:', protocol: url.protocol, hostname, port: url.port === '' ? undefined : Number(url.port), host: url.host, path }];
    }),
  );
  const touched = new Map<string, number>();
  // A deploy's upload is hundreds of requests with one token and one deploy id. The signature of a token already
  // verified here is not checked again until it expires (its revocation still is, every request), and a recorded
  // deploy never changes, so a found record is kept.
  const verified = new Bounded<string, { claims: DeployTokenClaims; kid: string }>(1000);
  const deploys = new Bounded<string, GatewayDeploy>(10_000);
  // Calls in flight per token (this replica): a leaked token cannot hold every upstream socket of its site.
  const inFlight = new Map<string, number>();
  const jsonInFlight = new Map<string, number>();
  // Upstream connection pools, one per platform and bound site (the set of sites is the operator's policies).
  const agents = new Map<string, http.Agent>();
  // Refusals without a valid token per address: the window's end, how many were audited in it, how many folded.
  const tokenless = new Bounded<string, { until: number; audited: number; folded: number }>(10_000);

  const agentFor = (platform: GatewayPlatform, binding: GatewayBinding, secure: boolean): http.Agent => {
    const key = `${platform.name} ${binding.upstreamSiteId}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = secure ? new https.Agent({ keepAlive: true, maxSockets: SOCKETS_PER_SITE }) : new http.Agent({ keepAlive: true, maxSockets: SOCKETS_PER_SITE });
      agents.set(key, agent);
    }
    return agent;
  };

  /** Count this call against its token; refuse it when the token already has its share in flight. */
  const hold = (call: CallRecord, claims: DeployTokenClaims, json: boolean): void => {
    const held = inFlight.get(claims.jti) ?? 0;
    if (held >= deps.config.callsPerToken) {
      throw new Stop(
        429,
        'too_many_calls',
        `deploy-sts refused the request for site ${claims.site}: this token (jti ${claims.jti}) already has ${held} calls in flight, the most one token may (DEPLOY_STS_GATEWAY_CALLS_PER_TOKEN); netlify deploy makes a few at a time: retry once some have finished`,
      );
    }
    const heldJson = json ? (jsonInFlight.get(claims.jti) ?? 0) : 0;
    if (json && heldJson >= JSON_CALLS_PER_TOKEN) {
      throw new Stop(429, 'too_many_calls', `deploy-sts refused the request for site ${claims.site}: this token (jti ${claims.jti}) already has ${heldJson} JSON bodies in flight, the most one token may; send them one after the other`);
    }
    inFlight.set(claims.jti, held + 1);
    if (json) jsonInFlight.set(claims.jti, heldJson + 1);
    call.holds = { jti: claims.jti, json };
  };
  const release = (call: CallRecord): void => {
    if (!call.holds) return;
    const { jti, json } = call.holds;
    call.holds = null;
    const left = (inFlight.get(jti) ?? 1) - 1;
    if (left <= 0) inFlight.delete(jti);
    else inFlight.set(jti, left);
    if (!json) return;
    const leftJson = (jsonInFlight.get(jti) ?? 1) - 1;
    if (leftJson <= 0) jsonInFlight.delete(jti);
    else jsonInFlight.set(jti, leftJson);
  };

  /**
   * Whether a refusal without a valid token is audited: the first 10 a minute from an address are; past that they are
   * counted, and the address's next audited row says how many were left out — so a flood from anyone on the network
   * cannot grow the audit log by a durable row per request (as at /token). Every call with a valid token is audited.
   */
  const auditTokenless = (req: IncomingMessage, call: CallRecord): boolean => {
    const key = addressKey(clientIp(req, deps.trustProxy) ?? 'unknown');
    const now = deps.now();
    let seen = tokenless.get(key);
    if (!seen || seen.until <= now) {
      const folded = seen?.folded ?? 0;
      if (folded > 0) call.detail = `${call.detail} (and ${folded} more refused without a valid token from this address, not recorded one by one)`;
      seen = { until: now + TOKENLESS_WINDOW_SECONDS, audited: 0, folded: 0 };
      tokenless.set(key, seen);
    }
    if (seen.audited >= TOKENLESS_AUDITED_PER_WINDOW) {
      seen.folded++;
      return false;
    }
    seen.audited++;
    return true;
  };

  /**
   * Resolves once the row is written (or its failure logged); never rejects. `after-answer`: the client has its
   * answer already, so the row may share a commit with the next ones (see appendGatewayAudit).
   */
  const audit = (req: IncomingMessage, call: CallRecord, status: number, started: number, timing: 'before-answer' | 'after-answer'): Promise<void> => {
    const record: GatewayAuditRecord = {
      time: deps.now(), platform: call.platform, site: call.site, tokenJti: call.tokenJti, context: call.context,
      method: req.method ?? 'GET', route: call.route, deployId: call.deployId, result: call.result, reason: call.reason,
      status, upstreamStatus: call.upstreamStatus, bytesIn: call.bytesIn, bytesOut: call.bytesOut,
      clientIp: clientIp(req, deps.trustProxy), detail: call.detail.slice(0, 1000),
    };
    // A busy database (a pool wait, a statement timeout) must not lose the row: three tries, then an error line.
    const written = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await deps.storage.appendGatewayAudit(record, timing);
          return;
        } catch (error) {
          if (attempt === AUDIT_ATTEMPTS) {
            deps.log('error', 'gateway audit write failed', {
              event: 'gateway_audit_failed', error: (error as Error).message, site: record.site, token_jti: record.tokenJti,
              method: record.method, route: record.route, deploy_id: record.deployId, status: record.status,
            });
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        }
      }
    })();
    deps.log(status >= 500 ? 'error' : call.result === 'refused' || call.reason !== 'ok' ? 'warn' : 'info', 'gateway', {
      event: 'gateway', platform: call.platform, site: call.site, token_jti: call.tokenJti, context: call.context,
      method: record.method, route: call.route, deploy_id: call.deployId, result: call.result, reason: call.reason,
      status, upstream_status: call.upstreamStatus, bytes_in: call.bytesIn, bytes_out: call.bytesOut,
      ms: Math.round((performance.now() - started) * 10) / 10, client_ip: record.clientIp,
    });
    return written;
  };

  const touch = (name: string) => {
    const now = deps.now();
    if ((touched.get(name) ?? 0) + TOUCH_EVERY_SECONDS > now) return;
    touched.set(name, now);
    deps.storage.touchCredential(name, now).catch(() => undefined);
  };

  async function verify(req: IncomingMessage, platform: GatewayPlatform): Promise<DeployTokenClaims> {
    // The cache is keyed by a digest of what was presented (never the token itself), and a hit still needs the key
    // that signed it to be one of the ring's: a key dropped from the ring stops its tokens at the next request.
    const presented = createHash('sha256').update(`${platform.name} ${req.headers.authorization ?? ''}`).digest('base64url');
    const known = verified.get(presented);
    if (known && known.claims.exp > deps.now() && deps.publicKey(known.kid) !== undefined) return known.claims;
    if (known) verified.delete(presented);
    let kid = '';
    let claims: DeployTokenClaims;
    try {
      claims = await verifyDeployToken(bearerToken(req.headers.authorization), {
        issuer: deps.issuer,
        audience: `${deps.issuer}/gateway/${platform.name}`,
        keyFor: (wanted) => {
          kid = wanted;
          return deps.publicKey(wanted);
        },
        now: deps.now(),
      });
    } catch (error) {
      if (error instanceof DeployTokenError) {
        throw new Stop(401, error.code, `deploy-sts refused the token: ${error.message}. Get a token with the deploy-sts Action (gateway: ${platform.name}) in this job`);
      }
      throw error;
    }
    verified.set(presented, { claims, kid });
    return claims;
  }

  /**
   * The one storage read of every call: the token's revocation (so a revocation takes effect on the next request)
   * and the site's credential row (so a removed or replaced credential does too), in one statement.
   */
  async function readCall(claims: DeployTokenClaims, binding: GatewayBinding): Promise<StoredCredential | undefined> {
    let state: Awaited<ReturnType<GatewayStorage['readCall']>>;
    try {
      state = await deps.storage.readCall(claims.jti, binding.credential);
    } catch {
      throw new Stop(503, 'storage_unavailable', 'deploy-sts cannot read its revocation list and credentials right now; retry in a moment');
    }
    if (state.revoked) throw new Stop(401, 'revoked', `deploy-sts refused the token: it was revoked (jti ${claims.jti}); run the deploy-sts Action again for a fresh one`);
    return state.credential;
  }

  async function checkDeploy(plan: Forward, claims: DeployTokenClaims, binding: GatewayBinding, platform: GatewayPlatform): Promise<void> {
    if (plan.deployId === undefined || plan.deployCheck === 'site') return;
    let deploy = deploys.get(`${platform.name} ${plan.deployId}`);
    try {
      deploy ??= await deps.storage.findDeploy(platform.name, plan.deployId);
      if (deploy) deploys.set(`${platform.name} ${plan.deployId}`, deploy);
    } catch {
      throw new Stop(503, 'storage_unavailable', 'deploy-sts cannot read its deploy records right now; retry in a moment');
    }
    if (!deploy || deploy.upstreamSiteId !== binding.upstreamSiteId || deploy.site !== claims.site) {
      throw new Stop(
        404,
        'unknown_deploy',
        `deploy-sts refused ${plan.route} for deploy ${plan.deployId}: it was not created through deploy-sts for site ${claims.site} (${platform.name} site ${binding.upstreamSiteId}); a ${claims.context} token may only use deploys it created itself: run the whole deploy (e.g. netlify deploy) with a deploy-sts token`,
      );
    }
    // A preview token reaches only the deploys it created itself: another fork's draft is neither read, changed,
    // uploaded to nor cancelled with it (draft URLs, and so deploy ids, are public in PR comments).
    if (claims.context === 'preview' && deploy.context === 'preview' && deploy.tokenJti !== claims.jti) {
      throw new Stop(
        404,
        'unknown_deploy',
        `deploy-sts refused ${plan.route} for deploy ${plan.deployId} of site ${claims.site}: it was created by another deploy-sts token, and a preview token may only use deploys it created itself: run the whole deploy (e.g. netlify deploy) with one token`,
      );
    }
    if (plan.deployContext !== undefined && deploy.context !== plan.deployContext) {
      throw new Stop(
        403,
        'preview_deploy',
        `deploy-sts refused ${plan.route} for deploy ${plan.deployId} of site ${claims.site}: it was made with a ${deploy.context} token (a pull request's draft), and only deploys made with a ${plan.deployContext} token can be restored; deploy that content from a trusted run instead`,
      );
    }
    if (claims.context === 'preview' && deploy.context !== 'preview') {
      throw new Stop(
        403,
        'production_deploy',
        `deploy-sts refused ${plan.route} for deploy ${plan.deployId} of site ${claims.site}: it is a production deploy, and a preview token may only touch preview deploys; only a production token can change it`,
      );
    }
  }

  function reveal(binding: GatewayBinding, stored: StoredCredential | undefined): string {
    try {
      const secret = deps.credentials.open(binding.credential, stored);
      touch(binding.credential);
      return secret;
    } catch (error) {
      if (error instanceof CredentialError) {
        const fix = error.code === 'sealed_without_key' ? 'set DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE on every replica' : `an operator runs: ${setCommand(binding.credential)}`;
        throw new Stop(503, `credential_${error.code}`, `deploy-sts has no usable credential ${JSON.stringify(binding.credential)} for site ${binding.site}: ${error.code === 'missing' ? 'it is not in the credential store' : error.code === 'sealed_without_key' ? 'it is sealed and this replica has no key-encryption key' : 'it cannot be decrypted'}. To fix: ${fix}`);
      }
      throw new Stop(503, 'storage_unavailable', 'deploy-sts cannot read its credential store right now; retry in a moment');
    }
  }

  /**
   * A preview token creates at most DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN deploys: a leaked one cannot fill the
   * site with drafts during its few minutes. Counted in the storage (replicas share it) before the creation goes
   * upstream, atomically, so concurrent creations with one token never pass the limit together.
   */
  async function takeDeploySlot(plan: Forward, claims: DeployTokenClaims): Promise<void> {
    const limit = deps.config.previewDeploysPerToken;
    if (limit === 0) return;
    let taken: number | undefined;
    try {
      taken = await deps.storage.takeDeploySlot(claims.jti, limit, claims.exp);
    } catch {
      throw new Stop(503, 'storage_unavailable', `deploy-sts cannot count this token's deploys right now; retry ${plan.route} in a moment`);
    }
    if (taken === undefined) {
      throw new Stop(
        403,
        'preview_deploy_limit',
        `deploy-sts refused ${plan.route} for site ${claims.site}: this preview token (jti ${claims.jti}) has created ${limit} deploy${limit === 1 ? '' : 's'}, the most one preview token may (DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN); run the deploy-sts Action again for a fresh token, or ask the operator to raise the limit`,
      );
    }
  }

  /** Send the planned request upstream and stream the answer back. Resolves once the client has the answer. */
  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    plan: Forward,
    secret: string,
    claims: DeployTokenClaims,
    binding: GatewayBinding,
    platform: GatewayPlatform,
    call: CallRecord,
    deadline: Deadline,
  ): Promise<number> {
    const base = upstreamBases.get(platform.name)!;
    const query = plan.upstreamQuery.toString();
    const headers = upstreamRequestHeaders(req.headers);
    headers.authorization = platform.authorization(secret);
    headers['accept-encoding'] = 'identity';
    headers.host = base.host;

    let body: Buffer | undefined;
    if (plan.body === 'json') {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > deps.config.maxJsonBytes) throw tooLarge(plan.route, true, deps.config.maxJsonBytes);
      let parsed: unknown;
      // The deadline holds while the body arrives too: a body trickled in is not waited for past it.
      const reading = readBounded(req, deps.config.maxJsonBytes);
      reading.catch(() => undefined);
      const expired = new Promise<never>((_, reject) => {
        deadline.onExpire = () => reject(timedOut(plan.route, deps.config.timeoutMs, 'the JSON body was still arriving'));
      });
      expired.catch(() => undefined);
      if (deadline.expired) deadline.onExpire?.();
      try {
        const raw = await Promise.race([reading, expired]);
        parsed = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      } catch (error) {
        if (error instanceof Stop) throw error;
        if (error instanceof TooLarge) throw tooLarge(plan.route, true, deps.config.maxJsonBytes);
        throw new Stop(400, 'bad_json', `deploy-sts refused ${plan.route}: the body is not valid JSON`);
      } finally {
        deadline.onExpire = undefined;
      }
      const rewritten = plan.rewrite ? plan.rewrite(parsed) : { ok: true as const, body: parsed };
      if (!rewritten.ok) throw new Stop(rewritten.status ?? 403, rewritten.reason ?? 'body_refused', rewritten.message);
      body = Buffer.from(JSON.stringify(rewritten.body));
      headers['content-type'] = 'application/json';
      headers['content-length'] = body.length;
    } else if (plan.body === 'stream') {
      const declared = req.headers['content-length'];
      if (declared !== undefined) {
        if (Number(declared) > deps.config.maxBodyBytes) throw tooLarge(plan.route, false, deps.config.maxBodyBytes);
        headers['content-length'] = declared;
      }
    } else {
      headers['content-length'] = 0;
    }
    // Last before Netlify: a refused body takes no slot.
    if (plan.createsDeploy === true && claims.context === 'preview') await takeDeploySlot(plan, claims);

    // The platform module builds upstreamPath from validated ids and encoded segments; it is sent below the base's
    // path exactly as planned (no URL resolution in between).
    const upstream = (base.secure ? https : http).request({
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      path: `${base.path}${plan.upstreamPath}${query === '' ? '' : `?${query}`}`,
      method: req.method,
      headers,
      agent: agentFor(platform, binding, base.secure),
    });
    // From its connection on, the request may reach the platform: whatever happens next (a deadline, an abort, a cut
    // answer), the audit says forwarded, never refused (refused: nothing reached the platform).
    upstream.once('socket', (socket) => {
      if (!socket.connecting) call.result = 'forwarded';
      else socket.once('connect', () => (call.result = 'forwarded'));
    });
    // Once the deadline passes the upstream request is destroyed: its answer (or the answer's stream) fails.
    deadline.onExpire = () => upstream.destroy(new Error('deadline'));
    if (deadline.expired) deadline.onExpire(); // it passed while the body was read
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      upstream.once('response', resolve);
      upstream.on('error', reject); // kept: a late error (after the answer) must not go unhandled
    });
    // Plain pipe() with its own error handling rather than stream.pipeline: pipeline's clean-up (an AbortController
    // aborted per call, with a DOMException) cost more CPU than the rest of a 100 KiB relay.
    const sent = new Promise<void>((resolve, reject) => {
      if (plan.body !== 'stream') {
        call.bytesIn = body?.length ?? 0;
        upstream.end(body);
        resolve();
        return;
      }
      // Counted as it passes; past the limit the request is stopped (the chunk that crosses it never completes
      // the upstream request: it is destroyed before its end).
      const limit = deps.config.maxBodyBytes;
      req.on('data', (chunk: Buffer) => {
        call.bytesIn += chunk.length;
        if (call.bytesIn > limit) req.destroy(new TooLarge(limit));
      });
      req.once('end', resolve);
      req.on('error', reject);
      req.once('close', () => {
        if (!req.complete) reject(new Error('the client stopped sending'));
      });
      req.pipe(upstream);
    });
    // The upstream may answer before the upload ends (an early error): the answer wins, the rest is dropped.
    let response: IncomingMessage;
    try {
      response = await Promise.race([answered, sent.then(() => answered)]);
    } catch (error) {
      upstream.destroy();
      if (error instanceof TooLarge) throw tooLarge(plan.route, false, deps.config.maxBodyBytes);
      if (deadline.expired) throw timedOut(plan.route, deps.config.timeoutMs);
      if (req.destroyed || req.readableAborted) throw new Stop(400, 'client_aborted', `the client stopped sending ${plan.route}`);
      throw new Stop(502, 'upstream_unreachable', `deploy-sts could not reach ${platform.name} for ${plan.route}; retry in a moment`);
    }
    // An upload that stops short after all (the client aborts) can never complete upstream: end the request.
    sent.catch(() => upstream.destroy());
    call.upstreamStatus = response.statusCode ?? 502;
    call.result = 'forwarded';
    call.reason = 'ok';
    const status = response.statusCode ?? 502;
    const outHeaders = clientResponseHeaders(response.headers);
    outHeaders['cache-control'] ??= 'no-store';
    outHeaders['x-content-type-options'] = 'nosniff';
    // Answered before the whole upload arrived: the rest is dropped, so the connection ends with this answer, and the
    // upstream request, which can no longer complete, is ended once its answer is in. (Once answered, the client's
    // request no longer hears of its connection closing: left piped, a partial upload held its upstream socket.)
    if (plan.body === 'stream' && !req.complete) {
      outHeaders.connection = 'close';
      response.once('end', () => {
        if (req.complete) return;
        req.unpipe(upstream);
        upstream.destroy();
      });
    }

    const records = plan.createsDeploy === true && status >= 200 && status < 300;
    const isJson = (response.headers['content-type'] ?? '').toLowerCase().includes('json');
    // An answer the platform module rewrites is read whatever its Content-Type says: a site or deploy labelled
    // text/plain (or not at all) must not pass through unsanitised.
    if (records || plan.respond) {
      let raw: Buffer;
      try {
        raw = await readBounded(response, deps.config.maxJsonBytes);
      } catch (error) {
        if (deadline.expired) throw timedOut(plan.route, deps.config.timeoutMs, `${platform.name}'s answer was still arriving`);
        if (error instanceof TooLarge) throw new Stop(502, 'upstream_bad_answer', `${platform.name} answered ${plan.route} with more than ${deps.config.maxJsonBytes} bytes`);
        throw new Stop(502, 'answer_cut_off', `${platform.name}'s answer to ${plan.route} was cut off; retry in a moment`);
      }
      let parsed: unknown;
      try {
        parsed = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
      } catch {
        parsed = undefined;
      }
      if (records) {
        // The new deploy is recorded before its id reaches the client, so any replica serves its next step.
        const deployId = parsed === undefined ? undefined : platform.createdDeployId(parsed);
        if (!deployId) throw new Stop(502, 'upstream_bad_answer', `${platform.name} answered ${plan.route} without a deploy id`);
        call.deployId = deployId;
        try {
          await deps.storage.recordDeploy({
            platform: platform.name, deployId, site: claims.site, upstreamSiteId: binding.upstreamSiteId, context: claims.context,
            tokenJti: claims.jti, createdAt: deps.now(),
          });
        } catch {
          throw new Stop(503, 'storage_unavailable', `deploy-sts could not record deploy ${deployId}; retry the deploy in a moment`);
        }
      }
      let outStatus = status;
      let out = raw;
      if (plan.respond && parsed !== undefined) {
        const answer = plan.respond(status, parsed);
        outStatus = answer.status;
        out = Buffer.from(JSON.stringify(answer.body));
      } else if (plan.respond && (isJson || (status >= 200 && status < 300 && raw.length > 0))) {
        throw new Stop(502, 'upstream_bad_answer', `${platform.name} answered ${plan.route} with malformed JSON`);
      }
      outHeaders['content-length'] = out.length;
      if (plan.respond) outHeaders['content-type'] = 'application/json; charset=utf-8';
      res.writeHead(outStatus, outHeaders);
      res.end(out);
      call.bytesOut = out.length;
      return outStatus;
    }

    res.writeHead(status, outHeaders);
    // The deadline covers the answer too: a client that stops reading it is cut off (otherwise, once Netlify's answer
    // is all in, the call — and its audit row — would wait for that client for as long as it holds the connection).
    deadline.onExpire = () => {
      upstream.destroy(new Error('deadline'));
      res.destroy();
    };
    await new Promise<void>((resolve, reject) => {
      response.on('data', (chunk: Buffer) => {
        call.bytesOut += chunk.length;
      });
      response.on('error', reject);
      response.once('close', () => {
        if (!response.complete) reject(new Error('the answer stopped before its end'));
      });
      res.once('close', () => {
        if (res.writableFinished) return resolve();
        response.destroy();
        reject(new Error('the client went away before the whole answer'));
      });
      response.pipe(res);
    }).catch(() => {
      // The answer was cut off (Netlify's side broke, the deadline passed, or the client left): the client sees a
      // cut connection, the audit the reason.
      res.destroy();
      throw new Stop(status, deadline.expired ? 'timeout' : 'answer_cut_off', `the answer to ${plan.route} was cut off after ${call.bytesOut} bytes`);
    });
    return status;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, call: CallRecord, deadline: Deadline): Promise<number> {
    const rest = (req.url ?? '').slice(GATEWAY_PREFIX.length);
    const slash = rest.indexOf('/');
    const name = slash === -1 ? rest.split('?')[0]! : rest.slice(0, slash);
    const platform = platforms.get(name);
    if (!platform) throw new Stop(404, 'unknown_platform', `deploy-sts has no gateway for ${JSON.stringify(name.slice(0, 40))} (known: ${[...platforms.keys()].join(', ')})`);
    call.platform = platform.name;
    const below = slash === -1 ? '' : rest.slice(slash);
    if (!below.startsWith(`${platform.apiPrefix}/`)) {
      throw new Stop(404, 'not_found', `the ${platform.name} gateway serves ${GATEWAY_PREFIX}${platform.name}${platform.apiPrefix}/...; point the client's API URL there`);
    }
    const checked = checkRequestPath(below.slice(platform.apiPrefix.length));
    if (!checked.ok) throw new Stop(400, 'bad_path', `deploy-sts refused the request: ${checked.message}`);

    const claims = await verify(req, platform);
    call.site = claims.site;
    call.tokenJti = claims.jti;
    call.context = claims.context;
    const binding = platform.binding(deps.policies(), claims.site);
    if (!binding) {
      throw new Stop(403, 'site_not_bound', `deploy-sts refused the request: site ${claims.site} is not deployed through the ${platform.name} gateway; its policy needs upstream.${platform.name} (site_id, credential)`);
    }
    const stored = await readCall(claims, binding);

    const request: GatewayRequest = { method: (req.method ?? 'GET').toUpperCase(), path: checked.path, query: checked.query, contentType: contentType(req) };
    const plan: Plan = platform.plan(request, claims, binding);
    call.route = plan.route;
    if (plan.kind === 'refuse') throw new Stop(plan.status, plan.reason, plan.message);
    if (plan.kind === 'answer') {
      call.result = 'answered';
      call.reason = 'ok';
      req.resume();
      call.bytesOut = sendJson(res, plan.status, plan.body);
      return plan.status;
    }
    try {
      checkScope(claims, plan.scope);
    } catch (error) {
      throw new Stop(403, 'insufficient_scope', `deploy-sts refused ${plan.route} for site ${claims.site}: ${(error as Error).message}`);
    }
    if (plan.deployId !== undefined) call.deployId = plan.deployId;
    hold(call, claims, plan.body === 'json');
    await checkDeploy(plan, claims, binding, platform);
    const secret = reveal(binding, stored);
    return forward(req, res, plan, secret, claims, binding, platform, call, deadline);
  }

  return (req, res) => {
    const started = performance.now();
    const call: CallRecord = {
      platform: '-', site: null, tokenJti: null, context: null, route: '-', deployId: null, result: 'refused', reason: 'error',
      upstreamStatus: null, bytesIn: 0, bytesOut: 0, detail: '', holds: null,
    };
    const deadline: Deadline = { expired: false, onExpire: undefined };
    const timer = setTimeout(() => {
      deadline.expired = true;
      deadline.onExpire?.();
    }, deps.config.timeoutMs);
    timer.unref();
    handle(req, res, call, deadline)
      .then(
        (status) => status,
        (error: unknown) => {
          const stop =
            error instanceof Stop
              ? error
              : new Stop(500, 'internal_error', 'deploy-sts failed to handle the request; nothing more was sent upstream');
          if (!(error instanceof Stop)) deps.log('error', 'gateway internal error', { event: 'gateway_error', error: (error as Error)?.name });
          call.result = call.result === 'forwarded' ? 'forwarded' : 'refused';
          call.reason = stop.reason;
          call.detail = stop.message;
          // A refused upload is not read: close the connection after the answer instead of draining the body.
          const unread = !req.complete;
          const platform = platforms.get(call.platform);
          const body = platform ? platform.errorBody(stop.status, stop.message) : { code: stop.status, message: stop.message };
          if (res.headersSent) {
            res.destroy();
            return stop.status;
          }
          if (call.result === 'refused' && call.tokenJti === null && !auditTokenless(req, call)) {
            // Folded into the address's next audited refusal (see auditTokenless).
            call.bytesOut = sendJson(res, stop.status, body, unread ? { connection: 'close' } : {});
            if (unread) req.resume();
            return -1;
          }
          if (call.result === 'refused') {
            // A refusal is in the audit log before its answer leaves (what was forwarded is audited once it is done).
            call.bytesOut = Buffer.byteLength(JSON.stringify(body));
            return audit(req, call, stop.status, started, 'before-answer').then(() => {
              sendJson(res, stop.status, body, unread ? { connection: 'close' } : {});
              if (unread) req.resume();
              return -1;
            });
          }
          call.bytesOut = sendJson(res, stop.status, body, unread ? { connection: 'close' } : {});
          if (unread) req.resume();
          return stop.status;
        },
      )
      .then((status) => {
        clearTimeout(timer);
        release(call);
        if (status !== -1) void audit(req, call, status, started, 'after-answer');
      });
  };
}
