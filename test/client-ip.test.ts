/**
 * The client's address (exchange-service/client-ip.ts): what the audit log, the request log and the per-address rate
 * limit know a client by. Behind N trusted proxies it is the N-th X-Forwarded-For entry from the right; everything left
 * of that came from the client.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientIp } from '../exchange-service/client-ip.js';

const SOCKET = '10.1.1.1';

/** A request as clientIp sees it: the socket's address and the X-Forwarded-For header (one line, or several). */
function request(forwardedFor?: string | string[], socket: string | null = SOCKET): IncomingMessage {
  return { socket: { remoteAddress: socket ?? undefined }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

/** The rule read plainly: split, trim, drop the empty entries, take the N-th from the right (or the leftmost). */
function plainReading(header: string, trustProxy: number): string | undefined {
  const entries = header.split(',').map((s) => s.trim()).filter(Boolean);
  return entries[entries.length - trustProxy] ?? entries[0];
}

describe('without a trusted proxy (DEPLOY_STS_TRUST_PROXY=0)', () => {
  it('is the socket address, whatever X-Forwarded-For says', () => {
    expect(clientIp(request('203.0.113.9'), 0)).toBe(SOCKET);
  });

  it('is null when the socket has no address any more (closed)', () => {
    expect(clientIp(request(undefined, null), 0)).toBeNull();
  });
});

describe('behind trusted proxies', () => {
  it('takes the entry the nearest proxy appended, not what the client prepended', () => {
    expect(clientIp(request('6.6.6.6, 198.51.100.7'), 1)).toBe('198.51.100.7');
    expect(clientIp(request('6.6.6.6, 198.51.100.7, 10.0.0.2'), 2)).toBe('198.51.100.7');
  });

  it('takes the leftmost entry when there are fewer than N, and the socket when there are none', () => {
    expect(clientIp(request('198.51.100.7'), 3)).toBe('198.51.100.7');
    expect(clientIp(request(), 1)).toBe(SOCKET);
    expect(clientIp(request(''), 1)).toBe(SOCKET);
    expect(clientIp(request(' , ,,'), 1)).toBe(SOCKET);
  });

  it('skips empty entries instead of taking one for the address', () => {
    expect(clientIp(request('10.7.7.7, 198.51.100.10, ,'), 1)).toBe('198.51.100.10');
    expect(clientIp(request(',198.51.100.10'), 1)).toBe('198.51.100.10');
  });

  it('reads several X-Forwarded-For lines as one list, in order', () => {
    expect(clientIp(request(['6.6.6.6', '198.51.100.7, 10.0.0.2']), 2)).toBe('198.51.100.7');
  });

  /** X-Forwarded-For's last entry, and the address it is read as behind one trusted proxy. */
  const PORT_CASES: [entry: string, address: string][] = [
    ['6.6.6.6, 198.51.100.7:5555', '198.51.100.7'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[fe80::1%eth0]:443', 'fe80::1%eth0'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    // Unbracketed IPv6 with a port, where the entry as it stands is not an address.
    ['::ffff:192.0.2.1:80', '::ffff:192.0.2.1'],
    ['2001:db8:0:0:0:0:0:1:443', '2001:db8:0:0:0:0:0:1'],
    // A Linux source port has five digits: never a group of an IPv6 address.
    ['2001:db8::7:40001', '2001:db8::7'],
    // A valid address as it stands: its last group is not taken for a port (a proxy that appends ports must bracket IPv6).
    ['2001:db8::1:443', '2001:db8::1:443'],
    ['2001:db8:0:0:0:0:1:443', '2001:db8:0:0:0:0:1:443'],
    // Nothing that is not an address becomes one by losing a port-shaped tail.
    ['unknown:80', 'unknown:80'],
    [`${'1:'.repeat(40)}1:80`, `${'1:'.repeat(40)}1:80`],
  ];

  it.each(PORT_CASES)('drops a port some proxies append, so that each source port is not an address of its own: %s', (entry, address) => {
    expect(clientIp(request(entry), 1)).toBe(address);
  });

  it('drops the port from every valid address written with one, and from no valid address written without', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6());
    fc.assert(
      fc.property(address, fc.integer({ min: 0, max: 65535 }), (ip, port) => {
        expect(clientIp(request(ip), 1)).toBe(ip);
        expect(clientIp(request(`[${ip}]:${port}`), 1)).toBe(ip);
        // Unbracketed, the port is dropped unless the entry with it is an address as it stands (`2001:db8::1:443`)…
        const entry = `${ip}:${port}`;
        const got = clientIp(request(entry), 1);
        expect(got).toBe(isIP(entry) === 0 ? ip : entry);
        // …which an ephemeral source port (five digits: never an IPv6 group) never makes it, compressed or not.
        if (port >= 10_000) expect(got).toBe(ip);
      }),
      { numRuns: 4000 },
    );
  });

  it('reads a header of 16 KiB of commas and blanks (the client fills the left part, up to Node\'s header limit) as no entry', () => {
    expect(clientIp(request(','.repeat(16 * 1024)), 1)).toBe(SOCKET);
    expect(clientIp(request(', \t'.repeat(5 * 1024)), 1)).toBe(SOCKET);
    expect(clientIp(request(`${','.repeat(16 * 1024)}198.51.100.7`), 2)).toBe('198.51.100.7');
  });

  it('agrees with the plain reading of the rule on any header without ports', () => {
    const entry = fc.oneof(
      fc.constantFrom('', ' ', '\t', '  \t ', '\u00a0', ' 198.51.100.8\u00a0', '198.51.100.7', '2001:db8::5', 'unknown', '10.0.0.1'),
      fc.ipV4(),
      fc.ipV6(),
      fc.string({ maxLength: 6 }).filter((s) => !s.includes(',')),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), fc.integer({ min: 1, max: 4 }), (entries, trustProxy) => {
        const header = entries.join(',');
        const expected = plainReading(header, trustProxy);
        const got = clientIp(request(header), trustProxy);
        // The plain reading keeps an entry with a port or brackets as it is; clientIp drops them (the tests above).
        if (expected !== undefined && isIP(expected) === 0 && (/^\[/.test(expected) || isIP(expected.replace(/:\d{1,5}$/, '')) !== 0)) return;
        expect(got).toBe(expected ?? SOCKET);
      }),
      { numRuns: 2000 },
    );
  });
});
