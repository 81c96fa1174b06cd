/**
 * The replay check of the SQLite storage: the jtis of the tokens this process has exchanged, in memory, each under
 * its issuer and the expiry the replay cache keeps it until. A replayed token is the same signed token, so it carries
 * the same issuer, jti and expiry and meets its own entry; keyed by expiry, pruning drops whole seconds.
 *
 * Held in memory because only one process checks replays against a SQLite database (the serving one, which holds
 * the database's lock: data-dir-lock.ts). The table it mirrors is written in the same batch as the exchange's audit
 * record, appended in arrival order, and read back here when the service starts, so a restart forgets nothing. Against
 * a uniqueness check in SQLite, the check is a map lookup instead of a search of the replay key with text comparisons,
 * and the table's rows land on its last page instead of one random page of the current expiry second each: the
 * storage writes of one exchange 33.5 → 29.5 µs CPU in process (BENCHMARKS.md, session 8). About 90 bytes per token.
 */
export interface ConsumedJtis {
  /**
   * Records the jti as used: true the first time, false when it was already used (a replay). Synchronous, so two
   * calls with one jti are never both first.
   */
  consume(issuer: string, jti: string, expiresAt: number): boolean;
  /** Forget every jti kept until before `now` (unix seconds); returns how many. */
  prune(now: number): number;
  /** How many jtis are held. */
  readonly size: number;
}

export function consumedJtis(): ConsumedJtis {
  /** expiry → issuer → jtis. Nested maps rather than one joined key: no separator an issuer or a jti could contain. */
  const byExpiry = new Map<number, Map<string, Set<string>>>();
  let size = 0;
  return {
    consume(issuerGiven, jtiGiven, expiresAt) {
      // As SQLite stores them (UTF-8, a lone surrogate as U+FFFD), so that what is read back at the next start is the
      // same key: a jti that is not well-formed UTF-16 would otherwise be a new token after a restart.
      const issuer = issuerGiven.isWellFormed() ? issuerGiven : issuerGiven.toWellFormed();
      const jti = jtiGiven.isWellFormed() ? jtiGiven : jtiGiven.toWellFormed();
      let issuers = byExpiry.get(expiresAt);
      if (issuers === undefined) {
        issuers = new Map();
        byExpiry.set(expiresAt, issuers);
      }
      let jtis = issuers.get(issuer);
      if (jtis === undefined) {
        jtis = new Set();
        issuers.set(issuer, jtis);
      }
      if (jtis.has(jti)) return false;
      jtis.add(jti);
      size++;
      return true;
    },
    prune(now) {
      let forgotten = 0;
      for (const [expiresAt, issuers] of byExpiry) {
        if (expiresAt >= now) continue;
        for (const jtis of issuers.values()) forgotten += jtis.size;
        byExpiry.delete(expiresAt);
      }
      size -= forgotten;
      return forgotten;
    },
    get size() {
      return size;
    },
  };
}
