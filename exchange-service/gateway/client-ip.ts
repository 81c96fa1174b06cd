/** The client address for audit: the socket's, or with N trusted proxies the N-th X-Forwarded-For entry from the right. */
import type { IncomingMessage } from 'node:http';

export function clientIp(req: IncomingMessage, trustProxy: number): string | null {
  const socket = req.socket.remoteAddress ?? null;
  if (trustProxy <= 0) return socket;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  return list[list.length - trustProxy] ?? list[0] ?? socket;
}
