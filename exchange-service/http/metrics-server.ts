/**
 * The metrics listener: `GET /metrics` (Prometheus text format) on its own address, DEPLOY_STS_METRICS_LISTEN
 * (default 127.0.0.1:9464), never on the public listener — the metrics name sites and their activity. Anything else
 * there is a 404. Whoever can reach this address can read the metrics: keep it on loopback or a private network.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../metrics.js';

export interface MetricsListener {
  /** e.g. http://127.0.0.1:9464/metrics */
  url: string;
  close(): Promise<void>;
}

export async function listenMetrics(metrics: Metrics, address: { host: string; port: number }): Promise<MetricsListener> {
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.statusCode = path === '/metrics' ? 405 : 404;
      if (res.statusCode === 405) res.setHeader('Allow', 'GET, HEAD');
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(path === '/metrics' ? 'GET /metrics only\n' : 'not found: this listener serves only GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.setHeader('Content-Type', metrics.registry.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => {
        res.statusCode = 500;
        res.end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${address.host}:${address.port}`;
      const fix = 'set DEPLOY_STS_METRICS_LISTEN (--metrics-listen) to another HOST:PORT, or off';
      if (error.code === 'EADDRINUSE') reject(new Error(`cannot serve metrics on ${where}: the port is already in use; ${fix}`));
      else if (error.code === 'EACCES') reject(new Error(`cannot serve metrics on ${where}: permission denied; ${fix}`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new Error(`cannot serve metrics on ${where}: no such address on this machine; ${fix}`));
      else reject(error);
    });
    server.listen(address.port, address.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}/metrics`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
