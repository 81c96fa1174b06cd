/**
 * Cost per step of one exchange, measured in this process with the service's real modules: parse, verify
 * (signature, then claim validation), replay insert, policy match, scope, sign, audit write — and the whole
 * `exchange()` without HTTP. Also the signing algorithms side by side (why EdDSA), and RS256 verification through
 * jose (WebCrypto) against node:crypto directly. Times are microseconds per operation, one operation at a time,
 * unless a row says "in flight" (then wall time divided by operations, that many running concurrently).
 */
import { generateKeyPairSync, randomUUID, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { exchange, type ExchangeDeps } from '../exchange-service/exchange.js';
import { parseTokenRequest } from '../exchange-service/token-exchange/request.js';
import { fileKeyStore } from '../exchange-service/keys/file-key-store.js';
import { KeyRing } from '../exchange-service/keys/key-ring.js';
import { timeOrderedId } from '../exchange-service/access-token/jti.js';
import { mintAccessToken } from '../exchange-service/access-token/mint.js';
import { fitsGitHubClaims, githubClaimsSchema, type GitHubClaims } from '../exchange-service/oidc/claims.js';
import { jwksKeySource } from '../exchange-service/oidc/jwks.js';
import { verifyGitHubToken } from '../exchange-service/oidc/verify-oidc.js';
import { loadPolicyDir } from '../exchange-service/policy/load.js';
import { evaluate } from '../exchange-service/policy/match.js';
import { resolveScope } from '../exchange-service/policy/permissions.js';
import type { PolicySet } from '../exchange-service/policy/types.js';
import { openSqlite } from '../exchange-service/storage/sqlite.js';
import type { AuditRecord } from '../exchange-service/storage/types.js';
import { BENCH_AUDIENCE, publicKeyOf, type IssuerKey } from './issuer.js';
import { round } from './stats.js';
import type { TokenPool } from './token-pool.js';

export interface StepCost {
  step: string;
  /** Wall-clock microseconds per operation. */
  us: number;
  /** CPU microseconds per operation (user + system, every thread of this process): robust to a busy machine. */
  cpuUs: number;
}

interface Timing {
  us: number;
  cpuUs: number;
}

function measure(iterations: number, started: number, cpu: NodeJS.CpuUsage): Timing {
  const used = process.cpuUsage(cpu);
  return { us: ((performance.now() - started) * 1000) / iterations, cpuUs: (used.user + used.system) / iterations };
}

async function timeAsync(iterations: number, fn: (i: number) => Promise<unknown>): Promise<Timing> {
  for (let i = 0; i < Math.min(200, iterations); i++) await fn(i);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) await fn(i);
  return measure(iterations, started, cpu);
}

function timeSync(iterations: number, fn: (i: number) => unknown): Timing {
  for (let i = 0; i < Math.min(500, iterations); i++) fn(i);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  return measure(iterations, started, cpu);
}

/** Wall time per operation with `inFlight` operations running at once. */
async function timeConcurrent(total: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<Timing> {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return measure(total, started, cpu);
}

const FORM = (token: string, site: string) =>
  'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange' +
  `&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&resource=site%3A${site}&subject_token=${token}`;

export function auditRecord(i: number): AuditRecord {
  const now = Math.floor(Date.now() / 1000);
  return {
    time: now, result: 'granted', site: 'docs', rule: 'production', context: 'production', reason: 'granted',
    detail: 'rule "production" (docs.yml) granted production deployments:write', repository: 'acme/docs',
    repositoryId: '892043217', eventName: 'push', ref: 'refs/heads/main',
    workflowRef: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main', environment: 'production', runId: '7001234567',
    subjectJti: `subject-${i}-${Math.random()}`, tokenJti: timeOrderedId(), scope: 'deployments:write',
    expiresAt: now + 600, clientIp: '127.0.0.1',
  };
}

export interface MicroInputs {
  work: string;
  pool: TokenPool;
  key: IssuerKey;
  issuerUrl: string;
  /** Policy directories: the examples (1 site file + 1 org file), 1 generated site and 10,000 generated sites. */
  examplePolicies: string;
  smallPolicies: string;
  smallSite: string;
  largePolicies: string;
  largeSite: string;
  /** A data directory holding a large audit log (see prefill.ts), and its row count. */
  prefilledDataDir: string;
  prefilledRows: number;
}

export interface MicroResult {
  steps: StepCost[];
  signing: StepCost[];
  storage: StepCost[];
}

/**
 * A subject token's jti as the service records it: GitHub's jtis are random UUIDs and its tokens expire 300 s after
 * issue, so the replay cache's inserts arrive in order of expiry with random jtis (sequential jtis or one fixed expiry
 * would hide what the key order costs).
 */
export function subjectJti(issuer: string): { issuer: string; jti: string; expiresAt: number } {
  return { issuer, jti: randomUUID(), expiresAt: Math.floor(Date.now() / 1000) + 300 };
}

export async function runMicro(input: MicroInputs): Promise<MicroResult> {
  const { pool } = input;
  const n = 1000;
  const source = jwksKeySource(input.issuerUrl, { keys: [input.key.publicJwk as never] });
  const issuers = new Map([[input.issuerUrl, source]]);
  const verifyOptions = { issuers, audience: BENCH_AUDIENCE };
  const grants = pool.tokens.filter((_, i) => pool.kinds[i] === 'production');
  const previews = pool.tokens.filter((_, i) => pool.kinds[i] === 'preview');
  const denials = pool.tokens.filter((_, i) => pool.kinds[i] === 'denied');
  const token = (i: number) => grants[i % grants.length]!;

  // The example policies are bound to the bench's own issuer (testing/example-policies.ts): trust it, as the service does.
  const trusting = { issuers: [input.issuerUrl] };
  const examples: PolicySet = await loadPolicyDir(input.examplePolicies, trusting);
  const small: PolicySet = await loadPolicyDir(input.smallPolicies, trusting);
  const large: PolicySet = await loadPolicyDir(input.largePolicies, trusting);
  const claimsOf = async (t: string) => verifyGitHubToken(t, verifyOptions);
  const grantClaims = await claimsOf(grants[0]!);
  const previewClaims = await claimsOf(previews[0]!);
  const deniedClaims = await claimsOf(denials[0]!);
  const localJwks = createLocalJWKSet({ keys: [input.key.publicJwk as never] });
  const rsaPublic = publicKeyOf(input.key);
  const parts = grants.slice(0, 64).map((t) => t.split('.'));

  const steps: StepCost[] = [];
  steps.push({ step: 'parse (form + RFC 8693 fields)', ...timeSync(20_000, (i) => parseTokenRequest(Object.fromEntries(new URLSearchParams(FORM(token(i), 'docs'))))) });
  steps.push({
    step: 'for comparison: RS256 signature + JWT claims through jose',
    ...await timeAsync(n, (i) => jwtVerify(token(i), localJwks, { algorithms: ['RS256'], issuer: input.issuerUrl, audience: BENCH_AUDIENCE })),
  });
  const payload = (await jwtVerify(token(0), localJwks)).payload;
  steps.push({ step: 'claim validation (zod schema: now only to explain a refusal)', ...timeSync(20_000, () => githubClaimsSchema.safeParse(payload)) });
  steps.push({ step: 'claim validation (fitsGitHubClaims, the fast path)', ...timeSync(20_000, () => fitsGitHubClaims(payload)) });
  steps.push({ step: 'verifyGitHubToken (node:crypto RS256, claim checks)', ...await timeAsync(n, (i) => verifyGitHubToken(token(i), verifyOptions)) });
  steps.push({ step: 'policy match: grant, examples', ...timeSync(20_000, () => evaluate(examples, 'docs', grantClaims as never)) });
  steps.push({ step: 'policy match: preview (5th rule), 1 site', ...timeSync(20_000, () => evaluate(small, input.smallSite, previewClaims as never)) });
  steps.push({ step: 'policy match: preview (5th rule), 10,000 sites', ...timeSync(20_000, () => evaluate(large, input.largeSite, previewClaims as never)) });
  steps.push({ step: 'policy match: denial (5 rules), 1 site', ...timeSync(20_000, () => evaluate(small, input.smallSite, deniedClaims as never)) });
  steps.push({ step: 'policy match: denial (5 rules), 10,000 sites', ...timeSync(20_000, () => evaluate(large, input.largeSite, deniedClaims as never)) });
  steps.push({ step: 'scope resolution', ...timeSync(20_000, () => resolveScope(undefined, ['deployments:write'])) });

  const keysDir = mkdtempSync(join(input.work, 'micro-keys-'));
  const keys = await KeyRing.open(fileKeyStore(keysDir));
  const mintInput = (claims: GitHubClaims) => ({
    issuer: 'http://127.0.0.1:8080', audience: 'deploy-api', site: 'docs', org: 'acme', scope: 'deployments:write',
    context: 'production' as const, ttlSeconds: 600, now: Math.floor(Date.now() / 1000),
    actor: { iss: claims.iss, repository: claims.repository, repository_id: claims.repository_id, run_id: claims.run_id, run_attempt: claims.run_attempt,
      workflow_ref: claims.job_workflow_ref, sha: claims.sha, event_name: claims.event_name, ref: claims.ref },
  });
  steps.push({ step: 'sign: mintAccessToken (EdDSA, node:crypto)', ...timeSync(n, () => mintAccessToken(keys.active(), mintInput(grantClaims))) });

  // Storage, in its own data directory, both durability modes.
  const storage: StepCost[] = [];
  for (const synchronous of ['NORMAL', 'FULL'] as const) {
    for (const groupCommit of [false, true]) {
      const dir = mkdtempSync(join(input.work, `micro-db-${synchronous}-`));
      const db = openSqlite(dir, { synchronous, groupCommit });
      const label = `${synchronous}, ${groupCommit ? 'group commit' : 'one transaction per write'}`;
      const count = groupCommit ? 3000 : synchronous === 'FULL' ? 200 : 1000;
      // The writes of one exchange: the replay insert and the audit record, in one storage write (recordExchange).
      const one = (i: number) => db.recordExchange(subjectJti(input.issuerUrl), () => auditRecord(i));
      // Past the start of the checkpoint thread (after 200 commits), so its start-up is not counted.
      await timeConcurrent(600, 50, (i) => one(i + 2_000_000));
      storage.push({ step: `replay insert + audit write, 1 at a time (${label})`, ...await timeAsync(synchronous === 'FULL' ? 100 : 300, one) });
      storage.push({
        step: `replay insert + audit write, 50 in flight (${label})`,
        ...await timeConcurrent(count, 50, (i) => one(i + 1_000_000)),
      });
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const auditDir = mkdtempSync(join(input.work, 'micro-db-'));
  const auditDb = openSqlite(auditDir, { synchronous: 'FULL' });
  steps.push({ step: 'replay insert (group commit, 50 in flight)', ...await timeConcurrent(3000, 50, () => { const s = subjectJti(input.issuerUrl); return auditDb.consumeJti(s.issuer, s.jti, s.expiresAt); }) });
  steps.push({ step: 'audit write (FULL, group commit, 50 in flight)', ...await timeConcurrent(3000, 50, (i) => auditDb.appendAudit(auditRecord(i))) });
  const rows = input.prefilledRows.toLocaleString('en');
  for (const [label, db] of [['empty', auditDb], [`${rows} rows`, openSqlite(input.prefilledDataDir, { synchronous: 'FULL' })]] as const) {
    storage.push({
      step: `replay insert + audit write, 50 in flight (FULL, group commit), audit log ${label}`,
      ...await timeConcurrent(3000, 50, (i) => db.recordExchange(subjectJti(input.issuerUrl), () => auditRecord(i))),
    });
    if (db !== auditDb) await db.close();
  }

  // The whole exchange without HTTP, with the real verifier, policies, storage and keys.
  const deps: ExchangeDeps = {
    verify: (t) => verifyGitHubToken(t, verifyOptions),
    policies: () => examples,
    storage: auditDb,
    keys,
    issuer: 'http://127.0.0.1:8080',
    tokenAudience: 'deploy-api',
    now: () => Math.floor(Date.now() / 1000),
  };
  const body = (i: number) => Object.fromEntries(new URLSearchParams(FORM(pool.tokens[i % pool.tokens.length]!, 'docs')));
  let offset = 0;
  const fresh = (i: number) => body(offset + i);
  steps.push({ step: 'exchange() in process, 1 at a time (no HTTP)', ...await timeAsync(300, (i) => exchange(fresh(i), deps, '127.0.0.1')) });
  offset = 600;
  steps.push({ step: 'exchange() in process, 50 in flight (no HTTP)', ...await timeConcurrent(3000, 50, (i) => exchange(fresh(i), deps, '127.0.0.1')) });
  await auditDb.close();

  // Signing algorithms for the minted token: node:crypto directly and through jose (which the service uses).
  const signing: StepCost[] = [];
  const message = Buffer.from(`${parts[0]![0]}.${parts[0]![1]}`);
  const ed = generateKeyPairSync('ed25519');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  signing.push({ step: 'Ed25519 sign (node:crypto)', ...timeSync(3000, () => cryptoSign(null, message, ed.privateKey)) });
  signing.push({ step: 'ES256 sign (node:crypto)', ...timeSync(3000, () => cryptoSign('sha256', message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' })) });
  const edSig = cryptoSign(null, message, ed.privateKey);
  const ecSig = cryptoSign('sha256', message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
  signing.push({ step: 'Ed25519 verify (node:crypto)', ...timeSync(3000, () => cryptoVerify(null, message, ed.publicKey, edSig)) });
  signing.push({ step: 'ES256 verify (node:crypto)', ...timeSync(3000, () => cryptoVerify('sha256', message, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, ecSig)) });
  for (const alg of ['EdDSA', 'ES256'] as const) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    await exportJWK(privateKey);
    signing.push({
      step: `${alg} JWT sign (jose)`,
      ...await timeAsync(n, () => new SignJWT({ site: 'docs', scope: 'deployments:write' }).setProtectedHeader({ alg, typ: 'at+jwt' }).setIssuedAt().setExpirationTime('10m').sign(privateKey)),
    });
  }
  signing.push({
    step: 'RS256 verify (node:crypto, sync) for comparison',
    ...timeSync(3000, (i) => {
      const [h, p, s] = parts[i % parts.length]!;
      return cryptoVerify('sha256', Buffer.from(`${h}.${p}`), rsaPublic, Buffer.from(s!, 'base64url'));
    }),
  });

  rmSync(keysDir, { recursive: true, force: true });
  rmSync(auditDir, { recursive: true, force: true });
  const r = (list: StepCost[]) => list.map((s) => ({ ...s, us: round(s.us, 1), cpuUs: round(s.cpuUs, 1) }));
  return { steps: r(steps), signing: r(signing), storage: r(storage) };
}
