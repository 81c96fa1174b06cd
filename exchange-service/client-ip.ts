/**
 * The client's address, the one place it is worked out: for the audit log, the request log and the per-address rate
 * limit, on /token and every other route of the service and the gateway. The socket's address, or with N trusted
 * proxies (DEPLOY_STS_TRUST_PROXY=N) the N-th X-Forwarded-For entry from the right: each proxy appends the address it
 * was called from, so entries left of the ones our proxies appended came from the client and are not believed. With
 * fewer entries than N, the leftmost (as Express's `req.ip` does); empty entries are skipped.
 *
 * The header is walked from the right and only as far as needed, stepping over empty entries a character at a time:
 * the part left of our proxies' entries is the client's to fill, up to Node's 16 KiB header limit, and is read on
 * every request before any rate limit (splitting it into arrays cost ~350 µs for a header of 16,000 commas, as much
 * as an exchange; a `lastIndexOf`, `slice` and `trim` per empty entry still ~250 µs; stepping over them ~50 µs).
 */
import type { IncomingMessage } from 'node:http';

const COMMA = 0x2c;
const SPACE = 0x20;
const TAB = 0x09;

export function clientIp(req: IncomingMessage, trustProxy: number): string | null {
  const socket = req.socket.remoteAddress ?? null;
  if (trustProxy <= 0) return socket;
  const header = req.headers['x-forwarded-for'];
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text) return socket;
  let leftmost: string | undefined;
  let found = 0;
  let end = text.length;
  while (end > 0) {
    // Empty entries and the blanks around entries, stepped over a character at a time: nothing is looked up or
    // allocated for them.
    let c = text.charCodeAt(end - 1);
    while (c === COMMA || c === SPACE || c === TAB) {
      if (--end === 0) break;
      c = text.charCodeAt(end - 1);
    }
    if (end === 0) break;
    // The entry between the comma before `end` (or the start) and `end`.
    const comma = text.lastIndexOf(',', end - 1);
    const entry = text.slice(comma + 1, end).trim();
    if (entry !== '') {
      if (++found === trustProxy) return withoutPort(entry);
      leftmost = entry;
    }
    end = comma < 0 ? 0 : comma;
  }
  return leftmost === undefined ? socket : withoutPort(leftmost);
}

/**
 * An entry as an address. Some proxies append the client's port too (`198.51.100.7:5555`, `[2001:db8::1]:443`): kept,
 * each source port would be an address of its own, with a rate-limit bucket of its own. A port is dropped only where
 * the entry without it is an address and with it is not; `2001:db8::1:443` is a valid IPv6 address as it stands, so it
 * is kept whole.
 */
function withoutPort(entry: string): string {
  // Whatever is in the brackets (an IPv6 address, with a zone such as `%eth0`): only a proxy writes this entry.
  const bracketed = BRACKETED.exec(entry);
  if (bracketed) return bracketed[1]!;
  const unbracketed = V4_WITH_PORT.exec(entry) ?? V6_DOTTED_WITH_PORT.exec(entry) ?? V6_FULL_WITH_PORT.exec(entry);
  return unbracketed ? unbracketed[1]! : entry;
}

const BRACKETED = /^\[([^\]\s]+)\](?::\d{1,5})?$/;
/** `198.51.100.7:5555`. */
const V4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
/** `::ffff:198.51.100.7:80`: nothing may follow an IPv6 address's dotted quad but a port. */
const V6_DOTTED_WITH_PORT = /^([0-9a-fA-F:]*:\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
/** `2001:db8:0:0:0:0:0:1:443`: nine groups without `::`, one more than an IPv6 address has. */
const V6_FULL_WITH_PORT = /^((?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}):\d{1,5}$/;
