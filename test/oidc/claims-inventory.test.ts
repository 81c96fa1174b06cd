/**
 * Every claim a GitHub token carries is classified: checked by the verifier, read by the policy engine, recorded,
 * or ignored on purpose. A claim GitHub adds (added first to the dev issuer's GitHub-shaped claim set) fails here
 * until someone decides what it means for this service.
 */
import { describe, expect, it } from 'vitest';
import { githubShapedClaims } from '../../exchange-service/dev-issuer.js';
import { CONDITION_CLAIMS, githubClaimsSchema } from '../../exchange-service/oidc/claims.js';
import { GITHUB_CLAIMS, claimUse } from '../../exchange-service/oidc/claims-inventory.js';
import { startIssuer } from '../helpers/issuer.js';

describe('the inventory of GitHub OIDC claims', () => {
  it('classifies every claim the dev issuer and the test issuer put in a token', async () => {
    const issuer = await startIssuer();
    try {
      const names = new Set([...Object.keys(githubShapedClaims('https://issuer.invalid', 'aud')), ...Object.keys(issuer.claims())]);
      expect([...names].filter((name) => claimUse(name) === undefined)).toEqual([]);
    } finally {
      await issuer.close();
    }
  });

  it('classifies every claim the claim schema names', () => {
    expect(Object.keys(githubClaimsSchema.shape).filter((name) => claimUse(name) === undefined)).toEqual([]);
  });

  it('says a claim is read by policies exactly when a policy can name it', () => {
    const bindings = ['repository', 'repository_id', 'repository_owner_id', 'event_name'];
    const policyClaims = Object.entries(GITHUB_CLAIMS).filter(([, entry]) => entry.use === 'policy').map(([name]) => name);
    expect(policyClaims.sort()).toEqual([...new Set([...CONDITION_CLAIMS, ...bindings])].sort());
    expect(claimUse('repo_property_tier')?.use).toBe('policy');
  });

  it('leaves an unknown claim undecided rather than guessing', () => {
    expect(claimUse('brand_new_claim')).toBeUndefined();
    expect(claimUse('toString')).toBeUndefined();
  });
});
