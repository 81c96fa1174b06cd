/**
 * Prometheus metrics (prom-client) on a registry of the service's own — no global default registry, so two services in
 * one process (tests) never mix their numbers. Label values are bounded: a site or rule label is only ever a name from
 * the loaded policies (`-` otherwise), never a string a client chose.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KeySource } from './oidc/jwks.js';

export interface Metrics {
  registry: Registry;
  exchanges: Counter<'result' | 'site' | 'rule'>;
  denials: Counter<'reason'>;
  tokenLatency: Histogram<'result'>;
  rateLimited: Counter<'kind'>;
  policyReloads: Counter<'result'>;
  revocations: Counter;
  httpRequests: Counter<'route' | 'status'>;
}

export function createMetrics(keySources: () => Iterable<KeySource>, options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'deploy_sts_' });
  const metrics: Metrics = {
    registry,
    exchanges: new Counter({
      name: 'deploy_sts_exchanges_total',
      help: 'Token exchanges by result (granted, denied), site and rule',
      labelNames: ['result', 'site', 'rule'],
      registers: [registry],
    }),
    denials: new Counter({ name: 'deploy_sts_denials_total', help: 'Denied exchanges by reason', labelNames: ['reason'], registers: [registry] }),
    tokenLatency: new Histogram({
      name: 'deploy_sts_token_request_duration_seconds',
      help: 'Latency of POST /token',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rateLimited: new Counter({ name: 'deploy_sts_rate_limited_total', help: 'Requests refused with 429, by limit (ip, repository)', labelNames: ['kind'], registers: [registry] }),
    policyReloads: new Counter({ name: 'deploy_sts_policy_reloads_total', help: 'Policy reloads by result (ok, failed)', labelNames: ['result'], registers: [registry] }),
    revocations: new Counter({ name: 'deploy_sts_tokens_revoked_total', help: 'Tokens revoked through /revoke', registers: [registry] }),
    httpRequests: new Counter({ name: 'deploy_sts_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] }),
  };
  // Key sources count their own fetches; mirror the increase into counters at scrape time.
  const seen = new Map<string, { fetches: number; failures: number }>();
  const mirror = (field: 'fetches' | 'failures') =>
    function (this: Counter<'issuer'>) {
      for (const source of keySources()) {
        const last = seen.get(`${field}:${source.issuer}`) ?? { fetches: 0, failures: 0 };
        this.inc({ issuer: source.issuer }, source.stats[field] - last[field]);
        seen.set(`${field}:${source.issuer}`, { ...source.stats });
      }
    };
  new Counter({ name: 'deploy_sts_jwks_fetches_total', help: 'Fetches of issuer discovery documents and key sets', labelNames: ['issuer'], registers: [registry], collect: mirror('fetches') });
  new Counter({ name: 'deploy_sts_jwks_fetch_failures_total', help: 'Failed fetches of issuer key sets', labelNames: ['issuer'], registers: [registry], collect: mirror('failures') });
  return metrics;
}
