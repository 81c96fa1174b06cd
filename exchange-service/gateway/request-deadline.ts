/**
 * The deadline on the whole of a request (slow-body protection) for the routes that have no limit of their own: a
 * connection whose request is still incomplete `limitMs` after its headers arrived is cut.
 *
 * Kept per connection with one timer for all of them, for speed: a timer and two `once` listeners for each request
 * (every POST /token) cost about 1.5 µs of CPU and 1 KB allocated per request; here a request costs a map look-up, a
 * clock read and a WeakRef (about 0.2 µs and 90 bytes), a connection one 'close' listener, and the one timer fires at
 * the earliest deadline still pending.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

interface Watch {
  /**
   * The connection's latest request, held weakly so that nothing here keeps it after its answer (Node lets go of a
   * request then). An incomplete request is never collected: the connection's parser holds it.
   */
  request: WeakRef<IncomingMessage>;
  /** When it must be complete, in `performance.now()` milliseconds. */
  deadline: number;
}

export interface RequestDeadline {
  /** Cuts the connection of `req` if its request is not complete `limitMs` from now. */
  watch(req: IncomingMessage): void;
}

export function requestDeadline(limitMs: number): RequestDeadline {
  // A connection carries one request at a time (a pipelined one is parsed after the one before it is complete).
  const watches = new Map<Socket, Watch>();
  let timer: NodeJS.Timeout | undefined;

  function forget(this: Socket): void {
    watches.delete(this);
  }
  function arm(ms: number): void {
    timer = setTimeout(sweep, ms);
    timer.unref();
  }
  function sweep(): void {
    timer = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const [socket, watch] of watches) {
      const req = watch.request.deref();
      if (req === undefined || req.complete) continue;
      if (watch.deadline <= now) socket.destroy();
      else if (watch.deadline < next) next = watch.deadline;
    }
    if (next !== Infinity) arm(next - now);
  }

  return {
    watch(req) {
      if (req.complete) return;
      const deadline = performance.now() + limitMs;
      const socket = req.socket;
      const watch = watches.get(socket);
      if (watch === undefined) {
        watches.set(socket, { request: new WeakRef(req), deadline });
        socket.on('close', forget);
      } else {
        watch.request = new WeakRef(req);
        watch.deadline = deadline;
      }
      // Every other pending deadline is earlier than this one: an armed timer fires first and re-arms for the rest.
      if (timer === undefined) arm(limitMs);
    },
  };
}
