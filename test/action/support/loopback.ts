/**
 * Real HTTP servers on 127.0.0.1:0 for the Action's tests: a scripted server that records what it received,
 * a port nobody listens on, and a listener that never accepts (so connecting hangs).
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

/** Answers request number i (0-based) with `replies[min(i, last)]`. */
export async function startServer(...replies: Reply[]): Promise<LoopbackServer> {
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
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
