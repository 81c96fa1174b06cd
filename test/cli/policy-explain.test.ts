/** `deploy-sts policy explain` without a token: claims as JSON (`--claims FILE|-`), or a recorded decision (`--audit-id N`). */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { EXAMPLE_POLICIES, exchangeToken, tempDir, useIssuerAndService } from '../helpers/service.js';

const work = tempDir('deploy-sts-explain-');
const running = useIssuerAndService();
afterAll(() => rmSync(work, { recursive: true, force: true }));

const actionClaims = {
  repository: 'acme/docs',
  repository_id: '892043217',
  repository_owner: 'acme',
  repository_owner_id: '51204',
  event_name: 'push',
  ref: 'refs/heads/feature',
  environment: 'production',
  job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
  workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
};

describe('policy explain --claims', () => {
  it('reads the claims from standard input and explains them rule by rule', async () => {
    const r = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: JSON.stringify(actionClaims) });
    expect(r.stdout).toContain('claims given as JSON (--claims): there is no token');
    expect(r.stdout).toMatch(/✗ ref "refs\/heads\/feature" is not/);
    expect(r.stdout).toContain('result: DENIED (no_rule_matched)');
    expect(r.code).toBe(1);
  });

  it('reads a file, and exits 0 when the policy grants', async () => {
    const file = join(work, 'claims.json');
    writeFileSync(file, JSON.stringify({ ...actionClaims, ref: 'refs/heads/main' }));
    const r = await cli(['policy', 'explain', '--site', 'docs', '--claims', file, '--policies', EXAMPLE_POLICIES]);
    expect(r.stdout).toContain('result: GRANTED by rule "production"');
    expect(r.code).toBe(0);
  });

  it('names the claims the policy reads that were not given, and a claim name GitHub never sends', async () => {
    const { repository_owner_id: _omitted, ...partial } = actionClaims;
    const r = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: JSON.stringify({ ...partial, evnt_name: 'push' }) });
    expect(r.stdout).toContain('note: claim "evnt_name" is not one GitHub sends (did you mean "event_name"?)');
    expect(r.stdout).toMatch(/^unavailable: repository_owner_id — the site's policy reads this claim, but the claims given do not include it/m);
  });

  it('takes a pasted log line around the JSON, and says plainly what is wrong with bad input', async () => {
    const pasted = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: `Claims: ${JSON.stringify(actionClaims)} ` });
    expect(pasted.stdout).toContain('result: DENIED');
    const bad = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: 'ref=main' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^deploy-sts: --claims - \(standard input\): not a JSON object of claims/);
    const number = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES], {}, { input: '{"repository_id": 892043217}' });
    expect(number.stderr).toContain('claim "repository_id" must be a string, as GitHub sends it (got 892043217)');
  });

  it('refuses two inputs at once, as a usage error', async () => {
    const r = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--token', 'x.jwt']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exactly one of --token FILE, --claims FILE|-');
  });
});

describe('policy explain --audit-id', () => {
  async function auditIds(): Promise<{ id: number; reason: string; ref: string | null }[]> {
    const r = await cli(['audit', '--json'], { DEPLOY_STS_DATA_DIR: running.svc.dataDir });
    return JSON.parse(r.stdout) as { id: number; reason: string; ref: string | null }[];
  }

  it('explains a recorded denial with the claims the audit log keeps, naming those it does not keep', async () => {
    await exchangeToken(running.svc.url, await running.issuer.token({ ref: 'refs/heads/feature' }));
    const row = (await auditIds()).find((a) => a.ref === 'refs/heads/feature')!;
    const r = await cli(['policy', 'explain', '--audit-id', String(row.id), '--policies', EXAMPLE_POLICIES], { DEPLOY_STS_DATA_DIR: running.svc.dataDir });
    expect(r.stdout).toMatch(new RegExp(`^note: audit record ${row.id} \\(.*\\): denied for site "docs", reason no_rule_matched: `, 'm'));
    expect(r.stdout).toContain('verified the token\'s signature, issuer, audience and times when it recorded them');
    expect(r.stdout).toMatch(/^unavailable: repository_owner_id — .* the audit record does not keep it/m);
    expect(r.stdout).toContain('site "docs":');
    expect(r.code).toBe(1);
  });

  it('says when a record holds no claims (refused before verification)', async () => {
    await exchangeToken(running.svc.url, await running.issuer.token({}, { foreignKey: true }));
    const row = (await auditIds()).find((a) => a.reason === 'bad_signature' || a.reason === 'unknown_kid')!;
    const r = await cli(['policy', 'explain', '--audit-id', String(row.id), '--policies', EXAMPLE_POLICIES], { DEPLOY_STS_DATA_DIR: running.svc.dataDir });
    expect(r.stdout).toContain(`was refused before its token's claims were verified (${row.reason})`);
    expect(r.code).toBe(1);
  });

  it('says when there is no such record', async () => {
    const r = await cli(['policy', 'explain', '--audit-id', '999999', '--policies', EXAMPLE_POLICIES], { DEPLOY_STS_DATA_DIR: running.svc.dataDir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no audit record 999999');
  });
});

describe('policy explain --json', () => {
  it('names fields in snake_case, as the HTTP API, and keeps the claims as GitHub names them', async () => {
    const input = JSON.stringify({ ...actionClaims, ref: 'refs/heads/main', repo_property_deployTier: 'gold' });
    const r = await cli(['policy', 'explain', '--site', 'docs', '--claims', '-', '--policies', EXAMPLE_POLICIES, '--json'], {}, { input });
    const parsed = JSON.parse(r.stdout) as { decision: { granted: boolean; rule: Record<string, unknown> }; unavailable_claims: string[]; claims: Record<string, string> };
    expect(parsed.decision.granted).toBe(true);
    expect(parsed.decision.rule).toHaveProperty('max_ttl', 600);
    expect(parsed.unavailable_claims).toEqual([]);
    expect(parsed.claims.repo_property_deployTier).toBe('gold');
    const keys = JSON.stringify({ ...parsed, claims: {} }).match(/"([A-Za-z_]+)":/g)!;
    expect(keys.filter((k) => /[A-Z]/.test(k))).toEqual([]);
  });
});
