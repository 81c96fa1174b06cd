import { describe, expect, it } from 'vitest';
import { POLICY_CLAIMS, decodeClaimsForDisplay, decodePolicyClaims, formatClaims } from '../../action/subject-claims.js';
import { startIssuer } from '../helpers/issuer.js';

describe('claims shown in a denial', () => {
  it('are decoded from the OIDC token without verifying it', async () => {
    const issuer = await startIssuer();
    try {
      const token = await issuer.token({ event_name: 'pull_request_target', ref: 'refs/heads/main', environment: 'preview' }, { foreignKey: true });
      expect(decodeClaimsForDisplay(token)).toEqual({
        event_name: 'pull_request_target',
        ref: 'refs/heads/main',
        job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
        workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
        environment: 'preview',
        repository: 'acme/docs',
        repository_id: '892043217',
        aud: 'https://deploy-sts.test',
      });
    } finally {
      await issuer.close();
    }
  });

  it('are nothing for something that is not a JWT', () => {
    expect(decodeClaimsForDisplay('not a token')).toBeUndefined();
    expect(decodeClaimsForDisplay('a.b.c')).toBeUndefined();
    expect(decodeClaimsForDisplay(`x.${Buffer.from('[1]').toString('base64url')}.y`)).toBeUndefined();
  });

  it('cannot break the log with control characters or length', () => {
    const payload = Buffer.from(JSON.stringify({ ref: 'refs/heads/x\n::warning::hi', workflow_ref: 'w'.repeat(1000) })).toString('base64url');
    const claims = decodeClaimsForDisplay(`e30.${payload}.sig`)!;
    expect(claims.ref).toBe('refs/heads/x ::warning::hi');
    expect(claims.workflow_ref!.length).toBeLessThan(320);
    expect(formatClaims(claims).every((line) => !line.includes('\n') && line.startsWith('  '))).toBe(true);
  });
});

describe('the claims copied as JSON for policy explain', () => {
  it('include every claim a policy can read, and repo_property_* claims', async () => {
    const { CONDITION_CLAIMS } = await import('../../exchange-service/oidc/claims.js');
    for (const claim of [...CONDITION_CLAIMS, 'repository', 'repository_id', 'repository_owner_id']) expect(POLICY_CLAIMS).toContain(claim);
    const payload = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', repo_property_tier: 'gold', run_id: '1', exp: 5 })).toString('base64url');
    expect(decodePolicyClaims(`e30.${payload}.sig`)).toEqual({ ref: 'refs/heads/main', repo_property_tier: 'gold' });
  });
});
