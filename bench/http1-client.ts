/**
 * The load generator's HTTP client: one keep-alive HTTP/1.1 connection, one request at a time, each answer framed by
 * its `Content-Length` (every server the benchmark loads answers that way).
 *
 * Why not `http.request`: the generator shares the 2 cores with the server under test, and what it spends is taken
 * from the server and counted as the server's latency. Node's client left about 19 KB of garbage per request (a
 * scavenge of 1.5–5 ms every ~270 ms in the closed loop, each one delaying every answer in flight and every request
 * due during it) and more CPU than this one; measured in BENCHMARKS.md ("How it measures").
 *
 * What it refuses rather than guess (the request fails with the reason, the connection is dropped): a chunked or
 * unframed answer, a malformed status line or header line, two different lengths, bytes after the answer, and a
 * connection that ends before the answer. A `Connection: close` answer (or an HTTP/1.0 one without keep-alive) is
 * read, then the next request opens a new connection; so does a request after more than IDLE_REUSE_MS idle (the
 * servers under test drop a connection idle for 5 s, and a request sent as they do would fail). `expire` fails a
 * request that has waited too long (a server that never finishes its answer must not hang the benchmark).
 */
import net from 'node:net';

export interface Answer {
  status: number;
  body: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** A connection idle longer than this is not reused: the service and Express close idle ones after 5 s. */
export const IDLE_REUSE_MS = 4_000;

export class Http1Connection {
  readonly #host: string;
  readonly #port: number;
  readonly #idleReuseMs: number;
  #socket: net.Socket | undefined;
  #waiting: { resolve(answer: Answer): void; reject(error: Error): void; sentAt: number } | undefined;
  /** When the last answer ended (the connection idles from then on). */
  #idleSince = 0;
  /** Bytes of the answer being read. */
  #received: Buffer | undefined;
  /** The answer's header block, once it has all arrived: where its body starts and ends, and whether to close. */
  #head: { status: number; bodyStart: number; end: number; close: boolean } | undefined;

  /** `idleReuseMs`: default IDLE_REUSE_MS (tests). */
  constructor(host: string, port: number, { idleReuseMs = IDLE_REUSE_MS }: { idleReuseMs?: number } = {}) {
    this.#host = host;
    this.#port = port;
    this.#idleReuseMs = idleReuseMs;
  }

  /** Send one request and resolve with its answer. Never two at once: a second call before the answer rejects. */
  request(method: string, path: string, headers: Record<string, string>, body: string): Promise<Answer> {
    if (this.#waiting) return Promise.reject(new Error('a request is already in flight on this connection'));
    if (this.#socket && performance.now() - this.#idleSince > this.#idleReuseMs) this.#drop(undefined);
    const socket = this.#socket ?? this.#connect();
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.#host}:${this.#port}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    return new Promise<Answer>((resolve, reject) => {
      this.#waiting = { resolve, reject, sentAt: performance.now() };
      socket.write(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  }

  /** Fail the request in flight, and drop the connection, if it was sent more than `maxMs` before `now`. */
  expire(now: number, maxMs: number): void {
    if (this.#waiting && now - this.#waiting.sentAt > maxMs) this.#drop(new Error(`no answer within ${maxMs / 1000} s`));
  }

  /** Drop the connection; a request in flight fails. */
  close(): void {
    this.#drop(new Error('the connection was closed by the client'));
  }

  #connect(): net.Socket {
    const socket = net.connect({ host: this.#host, port: this.#port });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#read(socket, chunk));
    socket.on('error', (error) => this.#drop(error, socket));
    socket.on('close', () => this.#drop(new Error('the server closed the connection before answering'), socket));
    this.#socket = socket;
    return socket;
  }

  #read(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    if (!this.#waiting) return this.#drop(new Error('the server sent bytes with no request in flight'), socket);
    const received = this.#received ? Buffer.concat([this.#received, chunk]) : chunk;
    this.#received = received;
    if (!this.#head) {
      const headEnd = received.indexOf(HEAD_END);
      if (headEnd < 0) return;
      const head = parseHead(received.toString('latin1', 0, headEnd));
      if (typeof head === 'string') return this.#drop(new Error(head), socket);
      const bodyStart = headEnd + HEAD_END.length;
      this.#head = { status: head.status, bodyStart, end: bodyStart + head.length, close: head.close };
    }
    const { status, bodyStart, end, close } = this.#head;
    if (received.length < end) return;
    if (received.length > end) return this.#drop(new Error(`the server sent ${received.length - end} bytes after the answer`), socket);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    this.#received = undefined;
    this.#head = undefined;
    this.#idleSince = performance.now();
    if (close) this.#drop(undefined, socket);
    waiting.resolve({ status, body: received.toString('utf8', bodyStart, end) });
  }

  /** Forget the connection (the next request opens another) and fail the request in flight, if any, with `error`. */
  #drop(error: Error | undefined, socket = this.#socket): void {
    if (!socket || socket !== this.#socket) return;
    this.#socket = undefined;
    this.#received = undefined;
    this.#head = undefined;
    socket.destroy();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting && error) waiting.reject(error);
  }
}

/** The status, body length and `Connection: close` of a header block, or why it cannot be read. */
function parseHead(head: string): { status: number; length: number; close: boolean } | string {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: |$)/.exec(lines[0]!);
  if (!statusLine) return `not an HTTP/1.1 status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`;
  const status = Number(statusLine[1]);
  if (status < 200) return `an informational answer (${status}) is not supported by this client`;
  let length: number | undefined;
  let closeToken = false;
  let keepAliveToken = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return `a malformed header line: ${JSON.stringify(line.slice(0, 80))}`;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^[0-9]+$/.test(value) || (length !== undefined && length !== Number(value))) return `a bad Content-Length: ${JSON.stringify(value)}`;
      length = Number(value);
    } else if (name === 'transfer-encoding') {
      return `Transfer-Encoding ${JSON.stringify(value)} is not supported by this client (it reads Content-Length answers)`;
    } else if (name === 'connection') {
      closeToken ||= /(^|,)\s*close\s*(,|$)/i.test(value);
      keepAliveToken ||= /(^|,)\s*keep-alive\s*(,|$)/i.test(value);
    }
  }
  const close = closeToken || (lines[0]!.startsWith('HTTP/1.0') && !keepAliveToken);
  if (length === undefined) return `an answer (${status}) without a Content-Length`;
  return { status, length, close };
}
