/**
 * The floor for the gateway's CPU, for section 8 of the benchmark: the plainest Node HTTP relay — keep-alive agent,
 * `pipe` both ways, a few headers copied — with none of the gateway's checks, audit or logging. Run as its own
 * process (`node build/bench/plain-relay.js <upstream origin>`); it announces `relay listening on <url>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const REQUEST_HEADERS = ['authorization', 'content-type', 'content-length', 'accept'];
const RESPONSE_HEADERS = ['content-type', 'content-length'];

const server = http.createServer((req, res) => {
  const headers: http.OutgoingHttpHeaders = { host: upstream.host };
  for (const name of REQUEST_HEADERS) if (req.headers[name] !== undefined) headers[name] = req.headers[name];
  const forwarded = http.request({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent }, (answer) => {
    const out: http.OutgoingHttpHeaders = {};
    for (const name of RESPONSE_HEADERS) if (answer.headers[name] !== undefined) out[name] = answer.headers[name];
    res.writeHead(answer.statusCode ?? 502, out);
    answer.pipe(res);
  });
  forwarded.on('error', () => res.destroy());
  req.pipe(forwarded);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`relay listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
