/**
 * Token-bucket rate limits, per client IP and per verified repository_id. Memory is bounded: the least recently
 * seen keys are evicted past `maxKeys` (an evicted key starts again with a full bucket, which only ever errs lenient
 * for a key not seen in a long time). Time is injected so the behaviour is tested without sleeping.
 */
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
