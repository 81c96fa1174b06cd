import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http1Connection, IDLE_REUSE_MS } from '../../bench/http1-client.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real server on loopback that records what it receives and answers with `handler`. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return { port, seen, connections: () => sockets.size };
}

/**
 * A raw TCP server on loopback: for each whole request (head and Content-Length body) it calls `answer` with the
 * socket and the request's number on that connection, to write any bytes at all. Counts connections.
 */
async function rawServer(answer: (socket: Socket, n: number) => void) {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let buffered = Buffer.alloc(0);
    let n = 0;
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length: *([0-9]+)/i.exec(buffered.toString('latin1', 0, headEnd))?.[1] ?? 0);
        if (buffered.length < headEnd + 4 + length) return;
        buffered = buffered.subarray(headEnd + 4 + length);
        answer(socket, n++);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  rawServers.push(server);
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

const rawServers: net.Server[] = [];
const servers: http.Server[] = [];
const clients: Http1Connection[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve).closeAllConnections())));
  await Promise.all(rawServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

function connect(port: number): Http1Connection {
  const client = new Http1Connection('127.0.0.1', port);
  clients.push(client);
  return client;
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

describe('the load generator’s HTTP/1.1 client', () => {
  it('sends each request whole and reads each answer, all on one kept-alive connection', async () => {
    const server = await serve((_req, res, body) => {
      const answer = JSON.stringify({ echo: body, note: 'é ✓' });
      res.writeHead(body.startsWith('deny') ? 400 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
    const client = connect(server.port);
    expect(await client.request('POST', '/token', FORM, 'a=1&b=2')).toEqual({ status: 200, body: JSON.stringify({ echo: 'a=1&b=2', note: 'é ✓' }) });
    expect(await client.request('POST', '/token', FORM, 'deny=ü')).toEqual({ status: 400, body: JSON.stringify({ echo: 'deny=ü', note: 'é ✓' }) });
    expect(server.connections()).toBe(1);
    expect(server.seen.map((s) => [s.method, s.url, s.headers['content-type'], s.headers['content-length'], s.body])).toEqual([
      ['POST', '/token', 'application/x-www-form-urlencoded', '7', 'a=1&b=2'],
      ['POST', '/token', 'application/x-www-form-urlencoded', '7', 'deny=ü'],
    ]);
    expect(server.seen[0]!.headers.host).toBe(`127.0.0.1:${server.port}`);
  });

  it('puts together an answer that arrives in pieces', async () => {
    const server = await serve((_req, res) => {
      const answer = 'x'.repeat(70_000);
      res.writeHead(200, { 'content-length': answer.length });
      res.write(answer.slice(0, 10));
      setTimeout(() => res.end(answer.slice(10)), 20);
    });
    const answer = await connect(server.port).request('POST', '/token', FORM, 'a=1');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('x'.repeat(70_000));
  });

  it('opens a new connection after an answer that closes its own', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 2, connection: 'close' });
      res.end('ok');
    });
    const client = connect(server.port);
    expect((await client.request('POST', '/token', FORM, 'a=1')).body).toBe('ok');
    expect((await client.request('POST', '/token', FORM, 'a=2')).body).toBe('ok');
    expect(server.connections()).toBe(2);
  });

  it('refuses a chunked answer, says why, and starts afresh for the next request', async () => {
    let first = true;
    const server = await serve((_req, res) => {
      if (first) {
        first = false;
        res.write('no length, ');
        res.end('so chunked');
        return;
      }
      res.writeHead(200, { 'content-length': 2 });
      res.end('ok');
    });
    const client = connect(server.port);
    await expect(client.request('POST', '/token', FORM, 'a=1')).rejects.toThrow(/Transfer-Encoding "chunked" is not supported/);
    expect(await client.request('POST', '/token', FORM, 'a=2')).toEqual({ status: 200, body: 'ok' });
    expect(server.connections()).toBe(2);
  });

  it('fails a request whose connection ends before the answer', async () => {
    const server = await serve((req) => req.socket.destroy());
    await expect(connect(server.port).request('POST', '/token', FORM, 'a=1')).rejects.toThrow(/closed the connection before answering|ECONNRESET/);
  });

  it('fails a request to a port nothing listens on', async () => {
    const server = await serve(() => {});
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expect(connect(server.port).request('POST', '/token', FORM, 'a=1')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses a second request while one is in flight', async () => {
    const server = await serve((_req, res) => setTimeout(() => res.writeHead(200, { 'content-length': 2 }).end('ok'), 20));
    const client = connect(server.port);
    const first = client.request('POST', '/token', FORM, 'a=1');
    await expect(client.request('POST', '/token', FORM, 'a=2')).rejects.toThrow(/already in flight/);
    expect(await first).toEqual({ status: 200, body: 'ok' });
  });
  it('reads a header block and body however the bytes are split', async () => {
    const server = await rawServer((socket) => {
      const parts = ['HTTP/1.1 200 OK\r\nConte', 'nt-Length: 5\r\n\r', '\n', 'he', 'llo'];
      parts.forEach((part, i) => setTimeout(() => socket.write(part), i * 5));
    });
    expect(await connect(server.port).request('POST', '/token', FORM, 'a=1')).toEqual({ status: 200, body: 'hello' });
  });

  it('refuses an answer without a length, two different lengths, a malformed header line, and bytes after the answer', async () => {
    const answers = [
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok',
      `${OK}surplus`,
    ];
    const server = await rawServer((socket) => socket.write(answers.shift()!));
    const client = connect(server.port);
    await expect(client.request('POST', '/token', FORM, 'a=1')).rejects.toThrow('an answer (200) without a Content-Length');
    await expect(client.request('POST', '/token', FORM, 'a=1')).rejects.toThrow('a bad Content-Length: "3"');
    await expect(client.request('POST', '/token', FORM, 'a=1')).rejects.toThrow('a malformed header line: "no colon here"');
    await expect(client.request('POST', '/token', FORM, 'a=1')).rejects.toThrow('the server sent 7 bytes after the answer');
    expect(server.connections()).toBe(4);
  });

  it('opens a new connection after an HTTP/1.0 answer, unless it says keep-alive', async () => {
    const answers = ['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok', OK];
    const server = await rawServer((socket) => socket.write(answers.shift()!));
    const client = connect(server.port);
    for (let i = 0; i < 3; i++) expect((await client.request('POST', '/token', FORM, 'a=1')).body).toBe('ok');
    expect(server.connections()).toBe(2);
  });

  it('reconnects after the server closed the idle connection', async () => {
    const server = await rawServer((socket) => {
      socket.write(OK);
      setTimeout(() => socket.end(), 10);
    });
    const client = connect(server.port);
    expect((await client.request('POST', '/token', FORM, 'a=1')).body).toBe('ok');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await client.request('POST', '/token', FORM, 'a=2')).body).toBe('ok');
    expect(server.connections()).toBe(2);
  });

  it('does not reuse a connection idle longer than the servers keep one', async () => {
    expect(IDLE_REUSE_MS).toBeLessThan(5_000); // the service and Express drop a connection idle for 5 s
    const server = await rawServer((socket) => socket.write(OK));
    const client = new Http1Connection('127.0.0.1', server.port, { idleReuseMs: 50 });
    clients.push(client);
    await client.request('POST', '/token', FORM, 'a=1');
    await client.request('POST', '/token', FORM, 'a=2');
    expect(server.connections()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await client.request('POST', '/token', FORM, 'a=3');
    expect(server.connections()).toBe(2);
  });

  it('fails a request whose answer never ends once it has waited too long', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'));
    const client = connect(server.port);
    let settled = false;
    const pending = client.request('POST', '/token', FORM, 'a=1');
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.expire(performance.now(), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(false); // waited 30 ms of 60 s: still waiting
    client.expire(performance.now() + 61_000, 60_000);
    await expect(pending).rejects.toThrow('no answer within 60 s');
  });
});
