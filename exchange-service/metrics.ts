/**
 * Prometheus metrics (prom-client) on a registry of the service's own — no global default registry, so two services in
 * one process (tests) never mix their numbers. Label values are bounded: a site or rule label is only ever a name from
 * the loaded policies (`-` otherwise), never a string a client chose.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
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

export interface MetricsOptions {
  /** Node's process metrics too (default true). */
  defaultMetrics?: boolean;
  /** Known label sets counted in place (default true; see cacheCounterLabels). false: prom-client alone, for comparison. */
  labelSetCache?: boolean;
}

export function createMetrics(keySources: () => Iterable<KeySource>, options: MetricsOptions = {}): Metrics {
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
  if (options.labelSetCache ?? true) {
    // Counted on every request: label sets looked up by value rather than hashed (see labelSets).
    cacheCounterLabels(metrics.httpRequests, ['route', 'status']);
    cacheCounterLabels(metrics.exchanges, ['result', 'site', 'rule']);
    cacheCounterLabels(metrics.denials, ['reason']);
    cacheCounterLabels(metrics.rateLimited, ['kind']);
    cacheHistogramLabels(metrics.tokenLatency, ['result']);
  }
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

/**
 * prom-client finds a label set's series by a string it builds from the labels at every call (`route:/token,status:200,`)
 * after checking each label name against the metric's, and a histogram's observe also allocates a closure and a pair
 * object and converts its bucket bound to a property name: ~200-280 ns and 220-400 bytes per call, several calls per
 * request. (Its `counter.labels(...)` children save nothing: each of their calls hashes again.) So the series key of
 * each label set prom-client has seen is kept in a tree of Maps by label value, and a known set is counted in place
 * on prom-client's own series (the same object its exposition reads). An unknown set, an explicit value, a set with
 * another label name and anything unusual goes through prom-client as before. Label values are bounded (see above);
 * past MAX_LABEL_SETS the tree stops growing.
 */
const MAX_LABEL_SETS = 1000;

interface Series {
  value: number;
}
interface HistogramSeries {
  labels: Record<string, unknown>;
  sum: number;
  count: number;
  bucketValues: Record<string, number>;
}
/** prom-client's series by key (its `hashMap`: not in its types). */
interface SeriesMap<S> {
  hashMap: Record<string, S | undefined>;
}

/** The series key of each label set seen, by the values of `names` in order; undefined when the set has other names. */
function labelSets(names: readonly string[]): { get(labels: Record<string, unknown>): string | undefined; set(labels: Record<string, unknown>, key: string): void } {
  type Node = Map<unknown, Node | string>;
  const root: Node = new Map();
  let size = 0;
  const exactNames = (labels: Record<string, unknown>) => {
    let count = 0;
    for (const name in labels) {
      if (!names.includes(name)) return false;
      count++;
    }
    return count === names.length;
  };
  return {
    get(labels) {
      let node: Node | string | undefined = root;
      for (const name of names) {
        if (typeof node !== 'object') return undefined;
        node = node.get(labels[name]);
      }
      return typeof node === 'string' && exactNames(labels) ? node : undefined;
    },
    set(labels, key) {
      if (size >= MAX_LABEL_SETS || !exactNames(labels)) return;
      let node = root;
      for (let i = 0; i < names.length - 1; i++) {
        let next = node.get(labels[names[i]!]);
        if (typeof next !== 'object') node.set(labels[names[i]!], (next = new Map()));
        node = next;
      }
      node.set(labels[names[names.length - 1]!], key);
      size++;
    },
  };
}

function cacheCounterLabels<T extends string>(counter: Counter<T>, names: readonly T[]): void {
  const counted = counter.inc.bind(counter) as (labels: LabelValues<T>, value?: number) => { labelHash: string };
  const series = counter as unknown as SeriesMap<Series>;
  const sets = labelSets(names);
  counter.inc = function inc(labels?: LabelValues<T> | number, value?: number): void {
    if (typeof labels === 'object' && labels !== null && value === undefined) {
      const key = sets.get(labels);
      const known = key === undefined ? undefined : series.hashMap[key];
      if (known !== undefined) {
        known.value += 1;
        return;
      }
      sets.set(labels, counted(labels).labelHash);
      return;
    }
    (counted as (labels?: LabelValues<T> | number, value?: number) => void)(labels, value);
  } as Counter<T>['inc'];
}

function cacheHistogramLabels<T extends string>(histogram: Histogram<T>, names: readonly T[]): void {
  const observed = histogram.observe.bind(histogram) as (labels: LabelValues<T> | number, value?: number) => void;
  const series = histogram as unknown as SeriesMap<HistogramSeries>;
  // prom-client's bucket property names, as it made them (`bucketValues[bound]`): the number converted once here.
  const bounds = (histogram as unknown as { upperBounds: number[] }).upperBounds;
  const bucketNames = bounds.map(String);
  const sets = labelSets(names);
  // prom-client's series key (labels in sorted order, `name:value,` each); checked against the series it finds.
  const sorted = (histogram as unknown as { sortedLabelNames: T[] }).sortedLabelNames;
  const keyOf = (labels: LabelValues<T>) => sorted.map((name) => (labels[name] === undefined ? '' : `${name}:${labels[name]},`)).join('');
  histogram.observe = function observe(labels: LabelValues<T> | number, value?: number): void {
    if (typeof labels === 'object' && labels !== null && typeof value === 'number' && Number.isFinite(value)) {
      const key = sets.get(labels);
      const known = key === undefined ? undefined : series.hashMap[key];
      if (known !== undefined) {
        known.sum += value;
        known.count += 1;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]!) {
            known.bucketValues[bucketNames[i]!]! += 1;
            break;
          }
        }
        return;
      }
      observed(labels, value);
      const found = series.hashMap[keyOf(labels)];
      if (found !== undefined && names.every((name) => String(found.labels[name]) === String(labels[name]))) sets.set(labels, keyOf(labels));
      return;
    }
    observed(labels, value);
  } as Histogram<T>['observe'];
}
