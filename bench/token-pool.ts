/**
 * The pool of pre-signed subject tokens. Signing RS256 costs ~0.9 ms per token, far more than the service spends
 * verifying one, so every token is signed before any clock starts, on one worker thread per core.
 *
 * The pool is signed once and reused by every load run: each run starts a service with a fresh data directory
 * (an empty replay cache), and a run uses each token once, so every token the service sees carries a jti it has
 * never seen. The mix is fixed by position: of every 10 tokens, 7 are production pushes, 2 are fork previews
 * (pull_request_target) and 1 is denied (a feature branch no rule admits): 90% grants, 10% denials.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { IssuerKey, TokenKind } from './issuer.js';
import type { SignJob } from './sign-worker.js';

export interface TokenPool {
  tokens: string[];
  kinds: TokenKind[];
  /** Unix seconds at signing: tokens expire 300 s later. */
  signedAt: number;
  signSeconds: number;
}

export function kindAt(i: number): TokenKind {
  const slot = i % 10;
  return slot === 9 ? 'denied' : slot >= 7 ? 'preview' : 'production';
}

export async function signPool(size: number, key: IssuerKey, issuer: string): Promise<TokenPool> {
  const started = performance.now();
  const now = Math.floor(Date.now() / 1000);
  const kinds = Array.from({ length: size }, (_, i) => kindAt(i));
  const workers = Math.max(1, availableParallelism());
  const per = Math.ceil(size / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const job: SignJob = { privatePem: key.privatePem, kid: key.kid, issuer, kinds: kinds.slice(w * per, (w + 1) * per), now };
      return new Promise<string[]>((resolve, reject) => {
        const worker = new Worker(new URL('./sign-worker.js', import.meta.url), { workerData: job });
        worker.once('message', (tokens: string[]) => resolve(tokens));
        worker.once('error', reject);
      });
    }),
  );
  return { tokens: parts.flat(), kinds, signedAt: now, signSeconds: (performance.now() - started) / 1000 };
}
