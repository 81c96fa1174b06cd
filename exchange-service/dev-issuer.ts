/**
 * A local stand-in for GitHub's OIDC issuer, for the README walk-through and demos: `deploy-sts dev token` prints a
 * GitHub-shaped JWT signed with a key kept in the data directory. `serve` trusts it only with DEPLOY_STS_DEV_ISSUER=1,
 * which is refused unless the service binds a loopback address. Its keys are read from disk, never fetched.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { quote } from '../shared/text.js';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { jwksKeySource, type KeySource } from './oidc/jwks.js';

/** `.invalid` never resolves: a token from this issuer can never be confused with a real one. */
export const DEV_ISSUER = 'https://dev-issuer.deploy-sts.invalid';
const KID = 'dev-issuer-1';

async function keyFile(dataDir: string): Promise<JWK> {
  const file = join(dataDir, 'dev-issuer-key.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: KID, alg: 'RS256' };
  await writeFile(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  await chmod(file, 0o600);
  return JSON.parse(await readFile(file, 'utf8')) as JWK;
}

/**
 * The claim in which `dev token` names the data directory whose key signed it (absolute), so that a signature that
 * does not verify can say which two directories' keys were involved. Dev tokens only: GitHub never sends it.
 */
export const DEV_DATA_DIR_CLAIM = 'deploy_sts_dev_data_dir';

export async function devKeySource(dataDir: string): Promise<KeySource> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = await keyFile(dataDir);
  const ours = resolve(dataDir);
  return {
    ...jwksKeySource(DEV_ISSUER, { keys: [pub] }),
    signatureHint(claims) {
      const signer = claims[DEV_DATA_DIR_CLAIM];
      const fix = `make the token with \`deploy-sts dev token --data-dir ${ours}\` (or DEPLOY_STS_DATA_DIR=${ours}), or run the service with the data directory that made it`;
      if (typeof signer !== 'string') return `; this service verifies dev issuer tokens with the key in data directory ${quote(ours, 300)}: ${fix}`;
      if (signer === ours) return `; it names this service's data directory ${quote(ours, 300)}, whose dev issuer key has changed since: make a new token`;
      return `; it was signed with the dev issuer key of data directory ${quote(signer, 300)}, and this service verifies dev issuer tokens with the key in data directory ${quote(ours, 300)}: ${fix}`;
    },
  };
}

/**
 * The claims GitHub puts in an OIDC token for a push to main of acme/docs, running the pinned deploy workflow in the
 * production environment (what examples/policies/docs.yml grants production). Every GitHub claim is a string, as
 * GitHub sends them; exp = iat + 300 and nbf is backdated, as GitHub does. `overrides` replace claims, and an
 * `undefined` override removes one. The one definition of this shape: the dev issuer, the tests and the benchmark
 * all build their tokens from it.
 */
export function githubShapedClaims(iss: string, aud: string, overrides: Record<string, unknown> = {}, now = Math.floor(Date.now() / 1000)): Record<string, unknown> {
  const sha = 'e2b4c3a1f0d9e8c7b6a5f4e3d2c1b0a9f8e7d6c5';
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    sub: 'repo:acme/docs:environment:production',
    aud,
    ref: 'refs/heads/main',
    sha,
    repository: 'acme/docs',
    repository_owner: 'acme',
    repository_owner_id: '51204',
    run_id: '7001234567',
    run_number: '42',
    run_attempt: '1',
    repository_visibility: 'public',
    repository_id: '892043217',
    actor_id: '1234567',
    actor: 'octocat',
    workflow: 'deploy',
    head_ref: '',
    base_ref: '',
    event_name: 'push',
    ref_protected: 'true',
    ref_type: 'branch',
    environment: 'production',
    workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
    workflow_sha: sha,
    job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
    job_workflow_sha: sha,
    runner_environment: 'github-hosted',
    iss,
    nbf: now - 5,
    exp: now + 300,
    iat: now,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete claims[key];
    else claims[key] = value;
  }
  return claims;
}

/** `deploy-sts dev token --claim k=v`: an empty value removes the claim; exp, iat and nbf are numbers. */
export function devClaims(audience: string, overrides: Record<string, string> = {}): Record<string, unknown> {
  const typed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(overrides)) {
    typed[key] = value === '' ? undefined : ['exp', 'iat', 'nbf'].includes(key) ? Number(value) : value;
  }
  return githubShapedClaims(DEV_ISSUER, audience, typed);
}

export async function devToken(dataDir: string, audience: string, overrides: Record<string, string> = {}): Promise<string> {
  const jwk = await keyFile(dataDir);
  const key = await importJWK(jwk, 'RS256');
  return new SignJWT({ ...devClaims(audience, overrides), [DEV_DATA_DIR_CLAIM]: resolve(dataDir) }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: KID }).sign(key);
}
