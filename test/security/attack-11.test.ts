/**
 * An outside attack on what issue 11 hardened. Each `describe` is one finding: it reproduced against the code before
 * its fix and holds after it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mintAccessToken } from '../../exchange-service/access-token/mint.js';
import { verifyDeployToken } from '../../exchange-service/verify/token.js';

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
