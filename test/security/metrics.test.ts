/**
 * The metrics name every site and its activity (grants and denials per site and rule): they are not for the public.
 * They are served on their own listener (DEPLOY_STS_METRICS_LISTEN, loopback by default) and `/metrics` on the
 * public port is a 404 like any unknown path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_METRICS_LISTEN, loadConfig } from '../../exchange-service/config.js';
import { exchangeToken, startService } from '../helpers/service.js';
import { startSuite, type Suite } from './support.js';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite();
});
afterAll(async () => {
  await suite?.stop();
});

describe('metrics', () => {
  it('are not served on the public port: /metrics there is a 404', async () => {
    expect((await exchangeToken(suite.svc.url, await suite.issuer.token())).status).toBe(200);
    const res = await fetch(`${suite.svc.url}/metrics`);
    expect(res.status).toBe(404);
    const text = await res.text();
    expect(text).not.toContain('deploy_sts_');
    expect(text).not.toContain('docs');
  });

  it('are served on their own listener, which serves nothing else', async () => {
    const url = suite.svc.service.metricsUrl!;
    expect(new URL(url).port).not.toBe(String(suite.svc.service.port));
    const text = await (await fetch(url)).text();
    expect(text).toMatch(/deploy_sts_exchanges_total\{result="granted",site="docs"/);
    for (const path of ['/token', '/.well-known/jwks.json', '/', '/metrics/x']) {
      expect((await fetch(new URL(path, url))).status).toBe(404);
    }
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
  });

  it('listen on loopback by default, and can be turned off', async () => {
    const base = { DEPLOY_STS_POLICIES: 'examples/policies' };
    expect(DEFAULT_METRICS_LISTEN).toBe('127.0.0.1:9464');
    expect(loadConfig(base).metricsListen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ ...base, DEPLOY_STS_METRICS_LISTEN: '[::1]:9100' }).metricsListen).toEqual({ host: '::1', port: 9100 });
    expect(loadConfig({ ...base, DEPLOY_STS_METRICS_LISTEN: 'off' }).metricsListen).toBeUndefined();
    expect(() => loadConfig({ ...base, DEPLOY_STS_METRICS_LISTEN: '9464' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, DEPLOY_STS_METRICS_LISTEN: 'localhost:99999' })).toThrow(/DEPLOY_STS_METRICS_LISTEN \(--metrics-listen\): must be HOST:PORT/);

    const off = await startService({ issuer: suite.issuer.url, env: { DEPLOY_STS_METRICS_LISTEN: 'off' } });
    try {
      expect(off.service.metricsUrl).toBeUndefined();
      expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });

  it('say which variable to change when their port is taken', async () => {
    const taken = new URL(suite.svc.service.metricsUrl!);
    await expect(startService({ issuer: suite.issuer.url, env: { DEPLOY_STS_METRICS_LISTEN: `127.0.0.1:${taken.port}` } })).rejects.toThrow(
      /cannot serve metrics on 127\.0\.0\.1:\d+: the port is already in use; set DEPLOY_STS_METRICS_LISTEN/,
    );
  });
});
