/**
 * The deadline on a whole request for the routes without a limit of their own (gateway/start.ts cuts at 30 s every
 * request that is not the gateway's): a connection whose request is still arriving at its deadline is cut; a request
 * complete in time is answered and its connection kept; each request of a connection, and each connection, has its
 * own deadline. Real server on 127.0.0.1, real sockets, a short limit.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestDeadline } from '../../exchange-service/gateway/request-deadline.js';

const LIMIT_MS = 400;

interface Client {
  socket: net.Socket;
  /** performance.now() when the connection closed. */
  closed: Promise<number>;
  received(): string;
}

describe('the deadline on a whole request', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    const deadline = requestDeadline(LIMIT_MS);
    server = http.createServer((req, res) => {
      deadline.watch(req);
      req.resume();
      req.on('end', () => res.end('answered'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function connect(): Promise<Client> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    return { socket, closed, received: () => text };
  }
  const head = (length: number) => `POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${length}\r\n\r\n`;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Whether `p` settles within `ms`. */
  const within = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

  it('cuts a connection whose body is still arriving at the deadline, not before', async () => {
    const client = await connect();
    const started = performance.now();
    client.socket.write(head(10) + 'grant');
    const cut = await client.closed;
    expect(cut - started).toBeGreaterThanOrEqual(LIMIT_MS - 5);
    expect(cut - started).toBeLessThan(LIMIT_MS + 2000);
    expect(client.received()).toBe('');
  });

  it('keeps a connection whose request was complete in time, and gives its next request a deadline of its own', async () => {
    const client = await connect();
    client.socket.write(head(5) + 'grant');
    expect(await within(client.closed, LIMIT_MS * 2), 'a complete request had its connection cut').toBe(false);
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*answered$/);
    // The second request of the connection, whose body never ends: cut at its own deadline, counted from its start.
    const started = performance.now();
    client.socket.write(head(10) + 'gr');
    const cut = await client.closed;
    expect(cut - started).toBeGreaterThanOrEqual(LIMIT_MS - 5);
    expect(cut - started).toBeLessThan(LIMIT_MS + 2000);
    expect(client.received().match(/answered/g)).toHaveLength(1);
  });

  it('gives each connection its own deadline', async () => {
    const first = await connect();
    const second = await connect();
    const complete = await connect();
    const started = performance.now();
    first.socket.write(head(10) + 'a');
    complete.socket.write(head(1) + 'a');
    await sleep(LIMIT_MS / 2);
    second.socket.write(head(10) + 'b');
    const firstCut = await first.closed;
    expect(firstCut - started).toBeGreaterThanOrEqual(LIMIT_MS - 5);
    expect(await within(second.closed, LIMIT_MS / 4), 'the later request was cut at the earlier deadline').toBe(false);
    const secondCut = await second.closed;
    expect(secondCut - started).toBeGreaterThanOrEqual(LIMIT_MS * 1.5 - 5);
    expect(complete.socket.destroyed).toBe(false);
    expect(complete.received()).toMatch(/answered$/);
    complete.socket.destroy();
  });

  it('cuts a slow second request on a keep-alive connection, and neither the quick nor an idle connection (attack review)', async () => {
    const slow = await connect();
    const idle = await connect();
    let slowClosed = false;
    let idleClosed = false;
    void slow.closed.then(() => (slowClosed = true));
    void idle.closed.then(() => (idleClosed = true));
    slow.socket.write(head(1) + 'A');
    idle.socket.write(head(1) + 'A');
    await sleep(LIMIT_MS / 2);
    // The second request on the same connection: its body never ends; a trickle keeps it busy.
    slow.socket.write(head(100) + 'A');
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write('B'), 50);
    try {
      await sleep(LIMIT_MS * 0.6); // past the first request's deadline, before the second's
      expect(slowClosed, "cut at the first request's deadline").toBe(false);
      await sleep(LIMIT_MS * 1.2); // past the second's, with slack for a loaded machine
      expect(slowClosed, 'still open past its deadline').toBe(true);
      expect(idleClosed, 'an idle keep-alive connection was cut').toBe(false);
    } finally {
      clearInterval(trickle);
      slow.socket.destroy();
      idle.socket.destroy();
    }
  });
});
