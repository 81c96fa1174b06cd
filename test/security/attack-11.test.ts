/**
 * An outside attack on what issue 11 hardened. Each `describe` is one finding: it reproduced against the code before
 * its fix and holds after it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAccessToken } from '../../exchange-service/access-token/mint.js';
import { GITHUB_ISSUER } from '../../exchange-service/oidc/issuers.js';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { formatPolicyProblem } from '../../exchange-service/policy/types.js';
import { addressKey } from '../../exchange-service/rate-limit.js';
import { monorepoClaims, monorepoOrg, toYaml } from '../policy/fixtures.js';
import { TOKEN_EXCHANGE } from '../helpers/service.js';
import { startSuite, type Suite } from './support.js';
import { openDbKeyRing } from '../../exchange-service/keys/db-key-store.js';
import { sealLegacyPrivateJwk } from '../../exchange-service/keys/key-encryption.js';
import { migrate } from '../../exchange-service/storage/pg-migrations.js';
import { createPool } from '../../exchange-service/storage/postgres.js';
import { verifyDeployToken } from '../../exchange-service/verify/token.js';
import { SKIP_POSTGRES, startPostgres, type TestPostgres } from '../../testing/postgres.js';

const ISSUER = 'https://sts.example.test';
const YEAR = 365 * 24 * 3600;

describe('a token whose lifetime is capped but whose iat is in the future', () => {
  it('is refused: exp - iat within the longest TTL must not let a stolen key mint a token valid for years', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const now = Math.floor(Date.now() / 1000);
    // Signed with a key of ours (stolen, or planted and later removed): exp - iat = 3600, the cap holds on paper,
    // yet iat is ten years ahead, so the token stays valid for ten years.
    const { token } = await mintAccessToken({ kid: 'k1', keyObject: privateKey }, {
      issuer: ISSUER, audience: 'deploy-api', site: 'docs', org: 'acme', scope: 'deployments:write', context: 'production',
      ttlSeconds: 3600, now: now + 10 * YEAR,
      actor: { iss: 'https://token.actions.githubusercontent.com', repository: 'acme/docs', repository_id: '1', run_id: '1', run_attempt: '1', workflow_ref: undefined, sha: 'abc', event_name: 'push', ref: 'refs/heads/main' },
    });
    const options = { issuer: ISSUER, audience: 'deploy-api', keyFor: (kid: string) => (kid === 'k1' ? publicKey : undefined), now };
    await expect(verifyDeployToken(token, options)).rejects.toMatchObject({ code: 'malformed', message: expect.stringMatching(/issued in the future/) });
    // A token issued now (within the clock tolerance) still verifies.
    const fresh = await mintAccessToken({ kid: 'k1', keyObject: privateKey }, {
      issuer: ISSUER, audience: 'deploy-api', site: 'docs', org: 'acme', scope: 'deployments:write', context: 'production',
      ttlSeconds: 600, now: now + 30,
      actor: { iss: 'https://token.actions.githubusercontent.com', repository: 'acme/docs', repository_id: '1', run_id: '1', run_attempt: '1', workflow_ref: undefined, sha: 'abc', event_name: 'push', ref: 'refs/heads/main' },
    });
    await expect(verifyDeployToken(fresh.token, { ...options, clockToleranceSeconds: 60 })).resolves.toMatchObject({ site: 'docs' });
  });
});

describe.skipIf(SKIP_POSTGRES)('rows planted in signing_keys with a key-encryption key', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const ed25519 = (kid: string) => JSON.stringify({ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid });
  const kids = (ring: { jwks(): { keys: { kid?: string }[] } }) => ring.jwks().keys.map((k) => k.kid);

  async function withPool(run: (pool: ReturnType<typeof createPool>) => Promise<void>): Promise<void> {
    const pool = createPool(await server.createDatabase());
    try {
      await migrate(pool);
      await run(pool);
    } finally {
      await pool.end();
    }
  }

  /** The next start (a deploy, a replica scaling up) must not trust the planted row: it fails, or leaves it out. */
  async function expectNotTrusted(pool: ReturnType<typeof createPool>, kek: Buffer, kid: string): Promise<void> {
    const next = await openDbKeyRing(pool, kek).catch((error: unknown) => error);
    if (next instanceof Error) {
      expect(next).toMatchObject({ code: expect.stringMatching(/^key_(unsealed|undecryptable|legacy_seal)$/) });
      return;
    }
    const ring = next as Awaited<ReturnType<typeof openDbKeyRing>>;
    expect(kids(ring)).not.toContain(kid);
    expect(ring.active().kid).not.toBe(kid);
  }

  // Was a known gap (session 2): the "first start with a KEK" sealing could not tell a database that never had sealed
  // keys from one whose sealed keys were deleted. The service now never seals a row itself; the operator does, once,
  // with `deploy-sts keys seal`.
  it('does not seal (and so trust) a plaintext key planted after deleting the sealed ones', async () => {
    await withPool(async (pool) => {
      const kek = randomBytes(32);
      await openDbKeyRing(pool, kek);
      // Whoever can write the database, without the KEK: delete the sealed keys, so that the "first start with a KEK"
      // sealing runs again, and plant a plaintext key of their own.
      await pool.query('DELETE FROM signing_keys');
      await pool.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ('planted', 'EdDSA', $1, 'none', $2, NULL)", [
        ed25519('planted'),
        Math.floor(Date.now() / 1000),
      ]);
      await expectNotTrusted(pool, kek, 'planted');
    });
  });

  it('does not reseal, with new dates, a v1 row put back from an old backup', async () => {
    await withPool(async (pool) => {
      const kek = randomBytes(32);
      await openDbKeyRing(pool, kek);
      const t = Math.floor(Date.now() / 1000);
      // A key retired long ago (say, rotated with --now after a leak), sealed as v1 in an old backup: put back with a
      // fresh retired_at, which v1 does not bind.
      await pool.query("INSERT INTO signing_keys (kid, alg, private_jwk, encryption, created_at, retired_at) VALUES ('backup', 'EdDSA', $1, 'aes-256-gcm', $2, $3)", [
        sealLegacyPrivateJwk(kek, 'backup', ed25519('backup')),
        t - 20,
        t - 10,
      ]);
      await expectNotTrusted(pool, kek, 'backup');
    });
  });
});

describe('an org of the same name at another trusted issuer', () => {
  // github.com and a GHES are both trusted. An org is its issuer and its login: a GHES org that happens to be (or is
  // created as) `acme` is not github.com's acme, and must not govern, nor share, github.com acme's sites.
  const GHES = 'https://ghes.example.test/_services/token';
  const options = { issuers: [GITHUB_ISSUER, GHES] };
  const githubAcme = toYaml(monorepoOrg({ issuer: GITHUB_ISSUER, sites: ['app-*'] }));
  const ghesAcmeOrg = toYaml(monorepoOrg({ issuer: GHES, sites: ['*'], repository: 'acme/takeover', repository_id: '42', repository_owner_id: undefined }));
  const ghesAcmeSite = toYaml({ ...monorepoOrg({ issuer: GHES, repository: 'acme/takeover', repository_id: '42', repository_owner_id: undefined }), sites: undefined, site: 'app-web' });
  const ghesClaims = monorepoClaims({ iss: GHES, repository: 'acme/takeover', repository_id: '42', repository_owner_id: '43' });
  // (Its workflow calls the reusable acme/monorepo/.github/workflows/deploy-apps.yml of GHES's acme, which the rules pin.)

  const outcome = (files: Record<string, string>) => {
    const result = checkPolicyTexts(Object.entries(files).map(([file, text]) => ({ file, text })), options);
    if (!result.ok) return result.problems.map(formatPolicyProblem);
    return [`loaded; GHES acme/takeover granted app-web: ${evaluate(result.set, 'app-web', ghesClaims).granted}`];
  };

  it('cannot claim its sites with an org file (sites: ["*"])', () => {
    expect(outcome({ 'acme.yml': githubAcme, 'ghes-acme.yml': ghesAcmeOrg })).toEqual([
      expect.stringMatching(/^ghes-acme\.yml:\d+:\d+: sites\[0\]: "\*" can match the same site as "app-\*" of org "acme" \(acme\.yml\)/),
    ]);
  });

  it('cannot take one of its sites with a site file saying org: acme', () => {
    expect(outcome({ 'acme.yml': githubAcme, 'app-web.yml': ghesAcmeSite })).toEqual([
      expect.stringMatching(/^app-web\.yml:\d+:\d+: site "app-web" is matched by "app-\*" of org "acme" \(acme\.yml\)/),
    ]);
  });
});

describe('a JSON body in another UTF charset', () => {
  // body-parser decodes any utf-* charset (utf-16le, utf-16be, …); the duplicate- and many-keys scan read the raw
  // bytes as UTF-8, found no key in UTF-16 text, and let the body through.
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite();
  });
  afterAll(async () => {
    await suite?.stop();
  });
  const post = async (text: string, charset: string) => {
    const res = await fetch(`${suite.svc.url}/token`, {
      method: 'POST',
      body: charset === 'utf-16le' ? Buffer.from(text, 'utf16le') : Buffer.from(text, 'utf8'),
      headers: { 'content-type': `application/json; charset=${charset}` },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('gets the duplicated-key and too-many-keys checks, or is refused', async () => {
    const fields = { ...TOKEN_EXCHANGE, subject_token: await suite.issuer.token(), resource: 'site:docs' };
    const duplicated = `${JSON.stringify(fields).slice(0, -1)},"resource":"site:docs"}`;
    const answer = await post(duplicated, 'utf-16le');
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.access_token).toBeUndefined();
    const many: Record<string, string> = { ...TOKEN_EXCHANGE, subject_token: await suite.issuer.token(), resource: 'site:docs' };
    for (let i = 0; i < 20; i++) many[`x${i}`] = 'y';
    const crowded = await post(JSON.stringify(many), 'utf-16le');
    expect(crowded.status, JSON.stringify(crowded.body)).not.toBe(200);
    expect(crowded.body.access_token).toBeUndefined();
  });
});

describe('per-address rate-limit keys', () => {
  it('key an IPv4-mapped address by its IPv4 address in every textual form (not the /64 of ::1)', () => {
    for (const form of ['::ffff:192.0.2.1', '::FFFF:192.0.2.1', '::ffff:c000:201', '0:0:0:0:0:ffff:c000:0201']) expect(addressKey(form), form).toBe('192.0.2.1');
    expect(addressKey('::ffff:c000:201')).not.toBe(addressKey('::1'));
  });
});
