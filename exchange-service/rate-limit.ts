/**
 * Token-bucket rate limits, per client IP and per verified repository_id. Memory is bounded: the least recently
 * seen keys are evicted past `maxKeys` (an evicted key starts again with a full bucket, which only ever errs lenient
 * for a key not seen in a long time). Time is injected so the behaviour is tested without sleeping.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface RateLimitOptions {
  /** Requests allowed per minute (the refill rate); the bucket holds a minute's worth (the burst). 0 = unlimited. */
  perMinute: number;
  maxKeys?: number;
  now?: () => number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until one request is allowed again (when not allowed). */
  retryAfter: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly ratePerMs: number;
  private readonly capacity: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    this.capacity = options.perMinute;
    this.ratePerMs = options.perMinute / 60_000;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  take(key: string): RateDecision {
    if (this.capacity <= 0) return { allowed: true, retryAfter: 0 };
    const now = this.now();
    const bucket = this.buckets.get(key);
    let tokens = this.capacity;
    if (bucket) {
      tokens = Math.min(this.capacity, bucket.tokens + (now - bucket.at) * this.ratePerMs);
      this.buckets.delete(key); // re-insert below: Map order is recency order
    } else if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (tokens >= 1) {
      this.buckets.set(key, { tokens: tokens - 1, at: now });
      return { allowed: true, retryAfter: 0 };
    }
    this.buckets.set(key, { tokens, at: now });
    return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - tokens) / this.ratePerMs / 1000)) };
  }
}

/**
 * The key a client address is limited by. An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses), so
 * keying by /128 would give it 2^64 buckets: IPv6 addresses are keyed by their /64 prefix. IPv4 addresses, and IPv4
 * addresses mapped into IPv6 (`::ffff:192.0.2.1`), are keyed by the address itself. Anything else is its own key.
 */
export function addressKey(address: string): string {
  const ip = address.includes('%') ? address.slice(0, address.indexOf('%')) : address; // drop a zone id
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  const groups = expandIPv6(ip);
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 part converted). */
function expandIPv6(ip: string): number[] {
  let text = ip.toLowerCase();
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const middle = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => parseInt(g, 16));
}
