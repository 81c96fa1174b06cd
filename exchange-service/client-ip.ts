/**
 * The client's address, the one place it is worked out: for the audit log, the request log and the per-address rate
 * limit, on /token and every other route of the service and the gateway. The socket's address, or with N trusted
 * proxies (DEPLOY_STS_TRUST_PROXY=N) the N-th X-Forwarded-For entry from the right: each proxy appends the address it
 * was called from, so entries left of the ones our proxies appended came from the client and are not believed. With
 * fewer entries than N, the leftmost (as Express's `req.ip` does); empty entries are skipped.
 */
import type { IncomingMessage } from 'node:http';

export function clientIp(req: IncomingMessage, trustProxy: number): string | null {
  const socket = req.socket.remoteAddress ?? null;
  if (trustProxy <= 0) return socket;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  return list[list.length - trustProxy] ?? list[0] ?? socket;
}
