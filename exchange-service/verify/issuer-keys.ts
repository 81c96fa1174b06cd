/**
 * The issuer's public keys for a relying party in another process: the JWKS named by `jwks_uri` in the issuer's
 * RFC 8414 metadata, fetched on first use and cached; a kid not in the cache triggers one refetch, at most once per
 * cooldown (so a flood of tokens with made-up kids cannot turn into a flood of fetches). Only Ed25519 signing keys
 * are kept. Every fetch is bounded in time and size, and follows no redirects.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readBoundedJson } from '../../shared/bounded-json.js';
import { isLoopbackHost } from '../../shared/wire.js';
import { DeployTokenError } from '../access-token/errors.js';

export interface IssuerKeysOptions {
  /** How long fetched keys are used before a refetch (default 300 s). */
  cacheSeconds?: number;
  /** Least time between fetches caused by unknown kids (default 30 s). */
  cooldownSeconds?: number;
  /** Per fetch (default 5000 ms). */
  timeoutMs?: number;
  /** For tests and runtimes without a global fetch. */
  fetch?: typeof fetch;
}

export interface IssuerKeys {
  keyFor(kid: string): Promise<KeyObject | undefined>;
}

const MAX_DOCUMENT_BYTES = 256 * 1024;

/** https, or http on loopback (tests, local demos). */
function secureUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/** RFC 8414 §3: the well-known path goes between the host and the issuer's path. */
function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  const rfc = `${url.origin}/.well-known/oauth-authorization-server${path}`;
  const appended = `${issuer.replace(/\/$/, '')}/.well-known/oauth-authorization-server`;
  return rfc === appended ? [rfc] : [rfc, appended];
}

async function getJson(url: string, options: IssuerKeysOptions): Promise<{ status: number; body?: unknown }> {
  const doFetch = options.fetch ?? fetch;
  const response = await doFetch(url, { redirect: 'error', signal: AbortSignal.timeout(options.timeoutMs ?? 5000), headers: { accept: 'application/json' } });
  if (!response.ok) {
    await response.body?.cancel();
    return { status: response.status };
  }
  return { status: response.status, body: await readBoundedJson(response, url, MAX_DOCUMENT_BYTES) };
}

async function fetchKeys(issuer: string, options: IssuerKeysOptions): Promise<Map<string, KeyObject>> {
  let jwksUri: string | undefined;
  for (const url of metadataUrls(issuer)) {
    const { status, body } = await getJson(url, options);
    if (status === 404) continue;
    if (!body) throw new Error(`${url} answered ${status}`);
    const metadata = body as { issuer?: unknown; jwks_uri?: unknown };
    if (metadata.issuer !== issuer) throw new Error(`the metadata at ${url} names issuer ${JSON.stringify(metadata.issuer)}, not ${issuer}`);
    if (typeof metadata.jwks_uri !== 'string' || !secureUrl(metadata.jwks_uri)) throw new Error(`the metadata at ${url} has no https jwks_uri`);
    jwksUri = metadata.jwks_uri;
    break;
  }
  if (!jwksUri) throw new Error(`${issuer} publishes no RFC 8414 metadata`);
  const { status, body } = await getJson(jwksUri, options);
  const keys = (body as { keys?: unknown } | undefined)?.keys;
  if (!Array.isArray(keys)) throw new Error(`${jwksUri} answered ${status} without a JWK set`);
  const found = new Map<string, KeyObject>();
  for (const jwk of keys as Record<string, unknown>[]) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.kid !== 'string' || 'd' in jwk) continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.alg !== undefined && jwk.alg !== 'EdDSA') continue;
    try {
      found.set(jwk.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x } as JsonWebKey, format: 'jwk' }));
    } catch {
      // a malformed key is skipped; tokens naming it fail as unknown_key
    }
  }
  return found;
}

export function issuerKeys(issuer: string, options: IssuerKeysOptions = {}): IssuerKeys {
  if (!secureUrl(issuer)) throw new TypeError(`the issuer must be an https:// URL (http:// only on loopback), got ${JSON.stringify(issuer)}`);
  const cacheMs = (options.cacheSeconds ?? 300) * 1000;
  const cooldownMs = (options.cooldownSeconds ?? 30) * 1000;
  let keys: Map<string, KeyObject> | undefined;
  let fetchedAt = -Infinity;
  let inFlight: Promise<Map<string, KeyObject>> | undefined;

  const refresh = (): Promise<Map<string, KeyObject>> => {
    inFlight ??= fetchKeys(issuer, options)
      .then((fresh) => {
        keys = fresh;
        return fresh;
      })
      .finally(() => {
        fetchedAt = performance.now();
        inFlight = undefined;
      });
    return inFlight;
  };

  return {
    async keyFor(kid) {
      const age = performance.now() - fetchedAt;
      try {
        if (!keys || age > cacheMs) await refresh();
        else if (!keys.has(kid) && age > cooldownMs) await refresh();
      } catch (error) {
        // Stale keys still verify while the issuer is unreachable; no keys at all is a 503.
        if (!keys) throw new DeployTokenError('keys_unavailable', `cannot fetch the keys of ${issuer}: ${(error as Error).message}`);
      }
      return keys?.get(kid);
    },
  };
}
