/**
 * What the platform-neutral gateway core asks of a platform module (gateway/<platform>/index.ts). A second platform
 * is one more implementation of GatewayPlatform in its own folder; the core (token check, binding, deploy records,
 * credential, streaming, limits, headers, audit) does not change.
 */
import type { PolicySet } from '../policy/types.js';
import type { DeployTokenClaims } from '../verify/claims.js';

/** A site's binding to its platform site, from the live policy set. */
export interface GatewayBinding {
  /** deploy-sts site slug. */
  site: string;
  /** The platform's id for the site (Netlify: a UUID). */
  upstreamSiteId: string;
  /** Name in the credential store. */
  credential: string;
  /** Platform-specific switches (Netlify: functionsInPreviews). */
  options: Readonly<Record<string, boolean>>;
}

/** The request as the platform sees it: the path below the platform's API prefix, already split and decoded. */
export interface GatewayRequest {
  method: string;
  /** e.g. `/sites/3970e0fe-…/deploys`; the part after `/gateway/<platform>/api/v1`. Never holds `..` or empty segments. */
  path: string;
  /** The raw query string without `?` (may be empty). */
  query: URLSearchParams;
  /** The client's Content-Type, lower-cased, without parameters ('' when absent). */
  contentType: string;
}

/** How a body the gateway parses is rewritten before it goes upstream. */
export type JsonRewrite = (
  body: unknown,
) => { ok: true; body: unknown } | { ok: false; message: string; /** audit reason (default body_refused) */ reason?: string; /** default 403 */ status?: 400 | 403 };

export interface Forward {
  kind: 'forward';
  /** Stable route name for audit and logs, e.g. `deploy.create`. */
  route: string;
  /** Path to request below the upstream base URL (normally the same as the request's). */
  upstreamPath: string;
  /** Query to send upstream (only what the platform allows; never the client's credentials). */
  upstreamQuery: URLSearchParams;
  /** A deploy the path names: the gateway checks it was recorded for this site (and context) before forwarding. */
  deployId?: string;
  /**
   * `recorded` (default when deployId is set): the deploy must have been created through the gateway for this site,
   * by a token of the same context (preview tokens never touch production deploys).
   * `site`: any deploy of the bound site (the platform checks the id belongs to the site in the path).
   */
  deployCheck?: 'recorded' | 'site';
  /**
   * The named deploy must have been created by a token of this context, whatever the caller's (restore: a fork's
   * draft is never published, not even by a production token).
   */
  deployContext?: 'production';
  /** `none`: no body is sent upstream; `stream`: streamed as is; `json`: parsed (bounded) and passed to `rewrite`. */
  body: 'none' | 'stream' | 'json';
  rewrite?: JsonRewrite;
  /** The answer carries a new deploy (its id at `createdDeployId`): record it before answering the client. */
  createsDeploy?: boolean;
  /** The permission the token needs (write implies read). */
  scope: string;
  /**
   * Rewrite a JSON answer (parsed within the JSON cap) before it reaches the client, e.g. to drop fields a deploy
   * token must not see or to answer a look-up by name. Answers that are not JSON pass through unchanged.
   */
  respond?: (status: number, body: unknown) => { status: number; body: unknown };
}

export interface Answer {
  kind: 'answer';
  route: string;
  status: number;
  body: unknown;
}

export interface Refusal {
  kind: 'refuse';
  route: string;
  status: 400 | 403 | 404 | 405 | 413;
  /** Stable machine reason for audit (`route_not_allowed`, `other_site`, `production_only`, ...). */
  reason: string;
  /** For the person who can fix it: what was refused, for which site and context, and what would allow it. */
  message: string;
}

export type Plan = Forward | Answer | Refusal;

export interface GatewayPlatform {
  /** Mounted at `/gateway/<name>`; tokens for it carry `aud` = `<public URL>/gateway/<name>`. */
  readonly name: string;
  /** The API path clients use below the mount point, e.g. `/api/v1`. */
  readonly apiPrefix: string;
  /** Where requests go, e.g. https://api.netlify.com/api/v1 (validated: https, or http on loopback). */
  readonly upstreamBase: string;
  /** The site's binding from the policy set, or undefined when its policy has no upstream for this platform. */
  binding(policies: PolicySet, site: string): GatewayBinding | undefined;
  /** Decide one request. Pure. */
  plan(request: GatewayRequest, token: DeployTokenClaims, binding: GatewayBinding): Plan;
  /** The Authorization header value sent upstream with the stored credential. */
  authorization(secret: string): string;
  /** An error body in the platform's own shape, so its CLI prints the message. */
  errorBody(status: number, message: string): unknown;
  /** The id of the deploy in an answer of a route with `createsDeploy`. */
  createdDeployId(body: unknown): string | undefined;
}
