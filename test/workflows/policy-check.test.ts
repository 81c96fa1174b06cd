/**
 * The policy cross-check (`--policies DIR --repository owner/name`): the trust policy's workflow pins against the
 * workflow files, with the service's own policy loader (test/workflows/policy-corpus/).
 */
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WorkflowsUsageError, workflowsCheck } from '../../exchange-service/workflows/command.js';
import { PolicyLoadError } from '../../exchange-service/policy/types.js';
import { POLICY_CORPUS, textAt } from './helpers.js';

interface Json {
  findings: { file: string; line: number; column: number; rule: string; severity: string; message: string }[];
  files: number;
}

async function run(options: Parameters<typeof workflowsCheck>[0]): Promise<{ code: number; json: Json }> {
  let stdout = '';
  const code = await workflowsCheck({ json: true, ...options }, { stdout: (t) => (stdout += t), stderr: () => {} });
  return { code, json: JSON.parse(stdout) as Json };
}

const workflows = relative(process.cwd(), join(POLICY_CORPUS, 'workflows'));
const policies = relative(process.cwd(), join(POLICY_CORPUS, 'policies'));

describe('the policy cross-check', () => {
  it('reports each pin problem at its place in the policy file', async () => {
    const { code, json } = await run({ dir: workflows, policies, repository: 'acme/www' });
    expect(code).toBe(1);
    const found = json.findings.map((f) => [relative(POLICY_CORPUS, join(process.cwd(), f.file)), f.rule, f.line, f.column, f.severity]);
    expect(found).toEqual([
      ['policies/www.yml', 'DSTS304', 16, 25, 'error'], // production-unsafe: unsafe-deploy.yml runs npm ci with id-token
      ['policies/www.yml', 'DSTS301', 24, 11, 'error'], // production-gone: gone.yml does not exist
      ['policies/www.yml', 'DSTS304', 30, 25, 'error'], // production-release: publish.yml (called by release.yml) runs make
      ['policies/www.yml', 'DSTS302', 36, 25, 'error'], // production-from-preview: preview*.yml runs on pull_request_target only
      ['policies/www.yml', 'DSTS302', 41, 41, 'error'], // previews: no pinned workflow runs on workflow_run
      ['policies/www.yml', 'DSTS303', 49, 5, 'warning'], // previews-anywhere: no pin
      ['policies/www.yml', 'DSTS304', 59, 25, 'error'], // production-broken: broken.yml does not parse
      ['workflows/broken.yml', 'DSTS001', 4, 1, 'error'],
      ['workflows/publish.yml', 'DSTS103', 7, 14, 'error'],
      ['workflows/unsafe-deploy.yml', 'DSTS103', 14, 14, 'error'],
    ]);
    const www = join(POLICY_CORPUS, 'policies');
    expect(textAt(www, 'www.yml', 16, 25, 11)).toBe('ACME/WWW/.g');
    expect(textAt(www, 'www.yml', 24, 11, 40)).toBe('- acme/www/.github/workflows/gone.yml@re'.slice(2) + 'fs');
    expect(textAt(www, 'www.yml', 41, 41, 12)).toBe('workflow_run');
    expect(textAt(www, 'www.yml', 49, 5, 10)).toBe('name: prev');
  });

  it('explains each finding: the rule, the pin, and the workflow findings behind a production error', async () => {
    const { json } = await run({ dir: workflows, policies, repository: 'acme/www' });
    const unsafe = json.findings.find((f) => f.rule === 'DSTS304' && f.line === 16)!;
    expect(unsafe.message).toContain('rule "production-unsafe" (production) trusts unsafe-deploy.yml with production');
    expect(unsafe.message).toContain('unsafe-deploy.yml:14:14 DSTS103');
    const broken = json.findings.find((f) => f.rule === 'DSTS304' && f.line === 59)!;
    expect(broken.message).toContain('broken.yml:4:1 DSTS001');
    const gone = json.findings.find((f) => f.rule === 'DSTS301')!;
    expect(gone.message).toContain('gone.yml@refs/heads/main names no workflow file among broken.yml, deploy.yml, preview.yml, publish.yml, release.yml, unsafe-deploy.yml');
  });

  it('accepts pins that match (globs, a reusable workflow run for its caller\'s events) and skips other repositories', async () => {
    const { json } = await run({ dir: workflows, policies, repository: 'acme/www' });
    const rulesNamed = json.findings.map((f) => /rule "([^"]+)"/.exec(f.message)?.[1]).filter(Boolean);
    expect(rulesNamed).not.toContain('production'); // deploy.yml on push and workflow_dispatch
    expect(rulesNamed).not.toContain('previews-shared'); // pins acme/shared-workflows: not checkable here
    expect(json.findings.some((f) => f.file.endsWith('other.yml'))).toBe(false); // bound to acme/other
  });

  it('checks only the rules bound to --repository (case-insensitively)', async () => {
    const { json } = await run({ dir: workflows, policies, repository: 'Acme/Other' });
    expect(json.findings.filter((f) => f.file.includes('policies')).map((f) => [f.rule, f.line])).toEqual([['DSTS301', 10]]);
  });

  it('needs --policies and --repository together, and a valid owner/name', async () => {
    await expect(run({ dir: workflows, policies })).rejects.toBeInstanceOf(WorkflowsUsageError);
    await expect(run({ dir: workflows, repository: 'acme/www' })).rejects.toBeInstanceOf(WorkflowsUsageError);
    await expect(run({ dir: workflows, policies, repository: 'acme' })).rejects.toThrow(/--repository must be owner\/name/);
  });

  it('fails with the loader\'s file:line:column problems when a policy is invalid', async () => {
    await expect(run({ dir: workflows, policies: workflows, repository: 'acme/www' })).rejects.toBeInstanceOf(PolicyLoadError);
  });
});
