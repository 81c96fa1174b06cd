/**
 * The per-request metrics count known label sets in place (metrics.ts cacheCounterLabels / cacheHistogramLabels)
 * instead of through prom-client's label hashing. Operators scrape the exposition: after any sequence of the calls
 * the HTTP app makes — and of calls it does not make (explicit values, other label names, numbers as label values,
 * resets) — it must be exactly prom-client's own, and wrong calls must fail as prom-client fails them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../exchange-service/metrics.js';

type Call = (m: Metrics) => void;

const route = fc.constantFrom('/token', '/healthz', '/introspect', 'other');
const status = fc.oneof(fc.constantFrom('200', '400', '403', '503'), fc.constantFrom(200, 403));
const result = fc.constantFrom('granted', 'denied');
const name = fc.constantFrom('docs', 'blog', '-');
const reason = fc.constantFrom('no_rule_matched', 'replayed', 'rate_limited');
const seconds = fc.oneof(fc.constantFrom(0, 0.001, 0.0025, 0.01, 2.5, 3, 100), fc.double({ min: 0, max: 5, noNaN: true }));

const call: fc.Arbitrary<Call> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(route, status).map(([r, s]): Call => (m) => m.httpRequests.inc({ route: r, status: String(s) })) },
  { weight: 2, arbitrary: fc.tuple(route, status).map(([r, s]): Call => (m) => m.httpRequests.inc({ status: s as string, route: r })) },
  { weight: 5, arbitrary: fc.tuple(result, name, name).map(([a, s, r]): Call => (m) => m.exchanges.inc({ result: a, site: s, rule: r })) },
  { weight: 1, arbitrary: fc.tuple(result, name).map(([a, s]): Call => (m) => m.exchanges.inc({ result: a, site: s })) },
  { weight: 1, arbitrary: fc.tuple(result, fc.integer({ min: 1, max: 5 })).map(([a, n]): Call => (m) => m.exchanges.inc({ result: a, site: '-', rule: '-' }, n)) },
  { weight: 3, arbitrary: reason.map((r): Call => (m) => m.denials.inc({ reason: r })) },
  { weight: 1, arbitrary: fc.constantFrom('ip', 'repository').map((k): Call => (m) => m.rateLimited.inc({ kind: k })) },
  { weight: 5, arbitrary: fc.tuple(result, seconds).map(([a, s]): Call => (m) => m.tokenLatency.observe({ result: a }, s)) },
  { weight: 1, arbitrary: seconds.map((s): Call => (m) => m.tokenLatency.observe({}, s)) },
  { weight: 1, arbitrary: fc.constant<Call>((m) => m.revocations.inc()) },
  { weight: 1, arbitrary: fc.constant<Call>((m) => m.registry.resetMetrics()) },
);

/** The exposition after the calls, with the label-set cache and with prom-client alone. */
async function bothWays(calls: Call[]): Promise<[string, string]> {
  const cached = createMetrics(() => [], { defaultMetrics: false });
  const plain = createMetrics(() => [], { defaultMetrics: false, labelSetCache: false });
  for (const c of calls) {
    c(cached);
    c(plain);
  }
  return [await cached.registry.metrics(), await plain.registry.metrics()];
}

describe('the per-request metrics', () => {
  it('expose exactly what prom-client exposes for the same calls', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(call, { maxLength: 200 }), async (calls) => {
        const [cached, plain] = await bothWays(calls);
        expect(cached).toBe(plain);
      }),
      { numRuns: 300 },
    );
  });

  it('count a request of each kind once, in its series', async () => {
    const m = createMetrics(() => [], { defaultMetrics: false });
    for (let i = 0; i < 3; i++) {
      m.httpRequests.inc({ route: '/token', status: '200' });
      m.exchanges.inc({ result: 'granted', site: 'docs', rule: 'production' });
      m.tokenLatency.observe({ result: 'granted' }, 0.004);
    }
    m.httpRequests.inc({ route: '/token', status: '403' });
    m.tokenLatency.observe({ result: 'granted' }, 7);
    const text = await m.registry.metrics();
    expect(text).toContain('deploy_sts_http_requests_total{route="/token",status="200"} 3\n');
    expect(text).toContain('deploy_sts_http_requests_total{route="/token",status="403"} 1\n');
    expect(text).toContain('deploy_sts_exchanges_total{result="granted",site="docs",rule="production"} 3\n');
    expect(text).toContain('deploy_sts_token_request_duration_seconds_bucket{le="0.0025",result="granted"} 0\n');
    expect(text).toContain('deploy_sts_token_request_duration_seconds_bucket{le="0.005",result="granted"} 3\n');
    expect(text).toContain('deploy_sts_token_request_duration_seconds_bucket{le="2.5",result="granted"} 3\n');
    expect(text).toContain('deploy_sts_token_request_duration_seconds_bucket{le="+Inf",result="granted"} 4\n');
    expect(text).toContain('deploy_sts_token_request_duration_seconds_count{result="granted"} 4\n');
  });

  it('refuse a label the metric does not have, and a bad value, as prom-client does, once the label set is known', () => {
    for (const m of [createMetrics(() => [], { defaultMetrics: false }), createMetrics(() => [], { defaultMetrics: false, labelSetCache: false })]) {
      m.httpRequests.inc({ route: '/token', status: '200' });
      m.tokenLatency.observe({ result: 'granted' }, 0.01);
      expect(() => m.httpRequests.inc({ route: '/token', status: '200', site: 'docs' } as never)).toThrow('Added label "site" is not included');
      expect(() => m.tokenLatency.observe({ result: 'granted', site: 'docs' } as never, 0.01)).toThrow('Added label "site" is not included');
      expect(() => m.tokenLatency.observe({ result: 'granted' }, NaN)).toThrow('Value is not a valid number');
      expect(() => m.httpRequests.inc({ route: '/token', status: '200' }, -1)).toThrow('not possible to decrease');
    }
  });
});
