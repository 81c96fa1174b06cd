/**
 * Where the verification keys of one issuer come from.
 * Remote: the issuer's OpenID discovery document names `jwks_uri`; the key set is cached, refreshed when stale,
 * and refetched on an unknown `kid` at most once per cooldown, so a flood of random `kid`s causes no fetch storm.
 * Fetches are bounded in time and size. Static: a JWKS file (air-gapped installs, offline debugging).
 * Only the `kid` and `alg` of a token header are read: `jku`, `x5u` and `jwk` are never followed.
 */
import { readBoundedJson } from '../../shared/bounded-json.js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { FlattenedJWSInput, JSONWebKeySet, JWTHeaderParameters } from 'jose';
import { readFile } from 'node:fs/promises';
import { quote } from '../../shared/text.js';
import { OAuthError, unavailable } from '../errors.js';
import { isLoopbackHost } from '../../shared/wire.js';

/**
 * The RS256 verification keys of a JWK set, by kid: RSA keys of at least 2048 bits whose `alg` (when given) is RS256
 * and whose `use` (when given) is `sig`. Anything else in the set is ignored; the first key wins for a repeated kid.
 */
export function rs256Keys(jwks: JSONWebKeySet): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const jwk of jwks.keys) {
    if (typeof jwk.kid !== 'string' || keys.has(jwk.kid) || jwk.kty !== 'RSA') continue;
    if ((jwk.alg !== undefined && jwk.alg !== 'RS256') || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
    try {
      const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) keys.set(jwk.kid, key);
    } catch {
      // not a usable RSA public key
    }
  }
  return keys;
}

export interface KeySource {
  readonly issuer: string;
  /** Resolve the verification key for a token header; rejects with an OAuthError. */
  resolve(header: JWTHeaderParameters, token?: FlattenedJWSInput): Promise<KeyObject>;
  /**
   * The key with this kid when `resolve` would return it at once, waiting for nothing (no fetch under way, none due);
   * otherwise undefined, and the caller asks `resolve`. For speed: it spares every exchange the promises of `resolve`.
   */
  cachedKey?(kid: string): KeyObject | undefined;
  /** Fetch statistics (remote sources): how many discovery/JWKS fetches were made and how many failed. */
  readonly stats: { fetches: number; failures: number };
  /** Fetch now (start-up warm-up, readiness). Rejects when the keys cannot be had. */
  ready(): Promise<void>;
  /** Words to add when a token's signature does not verify (the dev issuer names the data directories involved). */
  signatureHint?(claims: Record<string, unknown>): string;
}

export interface RemoteOptions {
  timeoutMs?: number;
  maxBytes?: number;
  cooldownMs?: number;
  /** Refresh a key set older than this on the next request. */
  maxAgeMs?: number;
  /** Keep using a stale key set this long when refreshing fails, then fail closed. */
  staleMs?: number;
  now?: () => number;
}

function parseJwks(body: unknown, where: string): JSONWebKeySet {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) {
    throw new Error(`${where} is not a JWK set (no "keys" array)`);
  }
  return body as JSONWebKeySet;
}

async function fetchJson(url: string, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
  return readBoundedJson(response, url, maxBytes);
}

function checkFetchUrl(value: string, what: string): string {
  const url = new URL(value);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) return url.href;
  throw new Error(`${what} ${value} must use https://`);
}

export function remoteKeySource(issuer: string, options: RemoteOptions = {}): KeySource {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const cooldownMs = options.cooldownMs ?? 30_000;
  const maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
  const staleMs = options.staleMs ?? 60 * 60_000;
  const now = options.now ?? Date.now;
  const stats = { fetches: 0, failures: 0 };

  let cached: { keys: Map<string, KeyObject>; fetchedAt: number } | undefined;
  let lastAttempt = -Infinity;
  let inflight: Promise<void> | undefined;

  async function load(): Promise<void> {
    lastAttempt = now();
    stats.fetches++;
    try {
      const discovery = await fetchJson(`${issuer}/.well-known/openid-configuration`, timeoutMs, maxBytes);
      const doc = discovery as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== issuer) throw new Error(`discovery document names issuer ${JSON.stringify(doc.issuer)}, expected ${issuer}`);
      if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
      const jwks = parseJwks(await fetchJson(checkFetchUrl(doc.jwks_uri, 'jwks_uri'), timeoutMs, maxBytes), 'jwks_uri');
      cached = { keys: rs256Keys(jwks), fetchedAt: now() };
    } catch (error) {
      stats.failures++;
      throw error;
    }
  }

  function refresh(): Promise<void> {
    inflight ??= load().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  let lastError: string | undefined;

  /**
   * The key set at time `t`, the one rule both `ensure` and `cachedKey` follow: none fetched yet; `stale` (older than
   * staleMs: no longer trusted); `old` (older than maxAgeMs: served while a refresh runs); or `fresh`.
   */
  function freshness(t: number): 'none' | 'stale' | 'old' | 'fresh' {
    if (!cached) return 'none';
    const age = t - cached.fetchedAt;
    return age > staleMs ? 'stale' : age > maxAgeMs ? 'old' : 'fresh';
  }

  /** Fetch now, sharing one fetch between concurrent callers; rejects with a 503 OAuthError. */
  async function refreshOrFail(): Promise<void> {
    try {
      await refresh();
      lastError = undefined;
    } catch (error) {
      lastError = (error as Error).message;
      throw unavailable(`the signing keys of issuer ${issuer} (${lastError})`, 'jwks_unavailable');
    }
  }

  /**
   * Every fetch respects the cooldown, whatever triggered it (no key set yet, a stale one, an unknown kid), so no
   * stream of requests — signed or not — can make this service hammer the issuer. Stale keys are served at once
   * while a background refresh runs; past `staleMs` they are no longer trusted and the answer is a 503.
   */
  async function ensure(kid: string | undefined): Promise<void> {
    if (inflight) await inflight.catch(() => {});
    const t = now();
    const coolingDown = t - lastAttempt < cooldownMs;
    switch (freshness(t)) {
      case 'none':
        if (coolingDown) throw unavailable(`the signing keys of issuer ${issuer} (${lastError ?? 'not fetched yet'})`, 'jwks_unavailable');
        return refreshOrFail();
      case 'stale':
        if (!coolingDown) return refreshOrFail();
        throw unavailable(`the signing keys of issuer ${issuer} (${lastError ?? 'stale'})`, 'jwks_unavailable');
      case 'old':
        if (!coolingDown) refreshOrFail().catch(() => {});
        return;
      case 'fresh':
        if (kid !== undefined && !cached?.keys.has(kid) && !coolingDown) await refreshOrFail().catch(() => {});
    }
  }

  return {
    issuer,
    stats,
    async ready() {
      await ensure(undefined);
    },
    cachedKey(kid) {
      // Exactly the case in which `ensure` does nothing: no fetch in flight, a fresh key set, and the kid in it.
      return inflight || freshness(now()) !== 'fresh' ? undefined : cached?.keys.get(kid);
    },
    async resolve(header) {
      await ensure(typeof header.kid === 'string' ? header.kid : undefined);
      if (!cached) throw unavailable(`the signing keys of issuer ${issuer}`, 'jwks_unavailable');
      const key = typeof header.kid === 'string' ? cached.keys.get(header.kid) : undefined;
      if (!key) {
        throw new OAuthError(
          'invalid_request',
          `subject_token: no key with kid ${quote(header.kid)} in the JWKS of ${issuer}; the token was not signed by that issuer`,
          'unknown_kid',
        );
      }
      return key;
    },
  };
}

export async function staticKeySource(issuer: string, file: string): Promise<KeySource> {
  let jwks: JSONWebKeySet;
  try {
    jwks = parseJwks(JSON.parse(await readFile(file, 'utf8')), file);
  } catch (error) {
    throw new Error(`DEPLOY_STS_JWKS_FILE: cannot read a JWK set from ${file}: ${(error as Error).message}`);
  }
  return jwksKeySource(issuer, jwks);
}

export function jwksKeySource(issuer: string, jwks: JSONWebKeySet): KeySource {
  const keys = rs256Keys(jwks);
  return {
    issuer,
    stats: { fetches: 0, failures: 0 },
    async ready() {},
    cachedKey: (kid) => keys.get(kid),
    async resolve(header) {
      const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
      if (!key) {
        throw new OAuthError(
          'invalid_request',
          `subject_token: no key with kid ${quote(header.kid)} in the configured JWKS of ${issuer}`,
          'unknown_kid',
        );
      }
      return key;
    },
  };
}
