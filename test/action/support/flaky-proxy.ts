/**
 * A reverse proxy on loopback in front of the exchange service that answers the first N token requests itself
 * with 503 + Retry-After, and forwards everything else untouched.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FlakyProxy {
  url: string;
  /** Subject tokens of every POST /token it saw, refused or forwarded. */
  tokenRequests: string[];
  close(): Promise<void>;
}

export async function startFlakyProxy(target: string, options: { failFirst: number; retryAfter: string }): Promise<FlakyProxy> {
  const upstream = new URL(target);
  const tokenRequests: string[] = [];
  let failures = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && req.url === '/token') {
        tokenRequests.push(new URLSearchParams(body.toString('utf8')).get('subject_token') ?? '');
        if (failures < options.failFirst) {
          failures++;
          res.writeHead(503, { 'content-type': 'application/json', 'retry-after': options.retryAfter });
          res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'the proxy says: try again' }));
          return;
        }
      }
      const headers = { ...req.headers, host: upstream.host };
      const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    tokenRequests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
