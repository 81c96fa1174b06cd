/**
 * Real HTTP servers on 127.0.0.1:0 (or ::1) for the Action's tests: a scripted server that records what it
 * received, a port nobody listens on, a listener that never accepts (so connecting hangs), and one that accepts
 * and at once drops every connection (so a TLS handshake never starts).
 */
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as a form (empty for other bodies). */
  form: URLSearchParams;
}

export type Reply = (req: ReceivedRequest, res: http.ServerResponse, index: number) => void;

export interface LoopbackServer {
  url: string;
  port: number;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** Answers request number i (0-based) with `replies[min(i, last)]`, on 127.0.0.1. */
export async function startServer(...replies: Reply[]): Promise<LoopbackServer> {
  return startServerOn('127.0.0.1', ...replies);
}

/** `startServer` on another loopback address, e.g. `::1` (its URL then has the address in brackets). */
export async function startServerOn(host: string, ...replies: Reply[]): Promise<LoopbackServer> {
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      const record: ReceivedRequest = {
        method: req.method ?? '',
        path: (req.url ?? '/').split('?')[0]!,
        headers: req.headers,
        body,
        form: new URLSearchParams(isForm ? body : ''),
      };
      const index = received.length;
      received.push(record);
      const reply = replies[Math.min(index, replies.length - 1)];
      if (!reply) {
        res.statusCode = 500;
        res.end();
        return;
      }
      reply(record, res, index);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
}

export function text(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body);
  };
}

/** Accepts the request and never answers. */
export const hang: Reply = () => {};

/** Drops the connection without an answer. */
export const reset: Reply = (_req, res) => {
  res.socket?.destroy();
};

/** A loopback port with nothing listening on it (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface StalledListener {
  port: number;
  close(): Promise<void>;
}

/**
 * A listener whose process never accepts: a child Node process listens with a backlog of 1 and then blocks its
 * event loop. Once the kernel's accept queue is full, further connection attempts get no answer at all, which is
 * what a firewall dropping packets looks like to a client.
 */
export async function startStalledListener(): Promise<StalledListener> {
  const script = `
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(String(server.address().port) + '\\n', () => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      });
    });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  // Fill the accept queue (backlog + 1 connections) so that the next SYN is dropped.
  const fillers: net.Socket[] = [];
  await Promise.all(
    [0, 1].map(
      () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve());
          s.once('error', reject);
          fillers.push(s);
        }),
    ),
  );
  return {
    port,
    async close() {
      for (const s of fillers) s.destroy();
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Whether this machine can listen on `host` (e.g. `::1`: some CI machines have no IPv6 loopback). */
export async function canListenOn(host: string): Promise<boolean> {
  const server = net.createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, host, () => resolve(true));
  });
  if (listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  return listening;
}

export interface DroppingListener {
  port: number;
  /** Connections accepted (and dropped) so far. */
  connections: number;
  close(): Promise<void>;
}

/** A TCP listener that accepts every connection and destroys it at once, before a byte is exchanged. */
export async function startDroppingListener(): Promise<DroppingListener> {
  const listener: DroppingListener = { port: 0, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    listener.connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  listener.port = (server.address() as AddressInfo).port;
  listener.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return listener;
}
