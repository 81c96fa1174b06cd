/** Worker thread: signs a slice of the token pool (RSA signing is the slow part of preparing a run). */
import { parentPort, workerData } from 'node:worker_threads';
import { createPrivateKey } from 'node:crypto';
import { githubShapedClaims, signRs256, type TokenKind } from './issuer.js';

export interface SignJob {
  privatePem: string;
  kid: string;
  issuer: string;
  kinds: TokenKind[];
  now: number;
}

const job = workerData as SignJob;
const key = createPrivateKey(job.privatePem);
const tokens = job.kinds.map((kind) => signRs256(githubShapedClaims(job.issuer, kind, job.now), job.kid, key));
parentPort!.postMessage(tokens);
