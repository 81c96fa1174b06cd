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
import { isIP } from 'node:net';

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
 * An entry as an address. Some proxies append the client's port too (`198.51.100.7:5555`, `[2001:db8::1]:443`,
 * `2001:db8::7:40001`): were it kept, each source port would be an address of its own, with a rate-limit bucket of its
 * own. An entry that is an address as it stands is kept whole; otherwise a trailing `:port` is dropped when what is left
 * is an address. That cannot tell every case: `2001:db8::7:8080` is a valid IPv6 address as it stands (the port reads
 * as its last group), so a proxy that appends ports must bracket IPv6 (docs/operating.md).
 */
function withoutPort(entry: string): string {
  // Longer than any address with a port: nothing to look for (the client fills the header, up to 16 KiB).
  if (entry.length > LONGEST_ADDRESS_WITH_PORT || isIP(entry) !== 0) return entry;
  // Whatever is in the brackets (an IPv6 address, with a zone such as `%eth0`): only a proxy writes this entry.
  const bracketed = BRACKETED.exec(entry);
  if (bracketed) return bracketed[1]!;
  const port = PORT.exec(entry);
  if (port === null) return entry;
  const address = entry.slice(0, port.index);
  return isIP(address) !== 0 ? address : entry;
}

/** `[` + an IPv6 address (at most 45 characters) with a short zone + `]:65535`. */
const LONGEST_ADDRESS_WITH_PORT = 72;
const BRACKETED = /^\[([^\]\s]+)\](?::\d{1,5})?$/;
const PORT = /:\d{1,5}$/;
