/** Every policy example in docs/policy-reference.md and the README loads, and grants what the docs say it grants. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../exchange-service/policy/load.js';
import { evaluate } from '../exchange-service/policy/match.js';
import { githubClaims } from './helpers/issuer.js';
import { ROOT } from './helpers/service.js';

// The reference's examples first (the numbered checks below are about them), then the README's (gateway, quick start).
const readme = ['docs/policy-reference.md', 'README.md'].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
const examples = [...readme.matchAll(/<!-- policy-example -->\s*```yaml\n([\s\S]*?)```/g)].map((m) => {
  const indent = /^( *)/.exec(m[1]!)![1]!.length; // blocks inside a list item are indented
  return m[1]!.replace(new RegExp(`^ {${indent}}`, 'gm'), '');
});

function load(text: string) {
  const result = checkPolicyTexts([{ file: 'README.yml', text }]);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.column} ${p.message}`).join('\n'));
  return result.set;
}

describe('the policy examples in docs/policy-reference.md and the README', () => {
  it('are there', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
  });

  for (const [i, text] of examples.entries()) {
    it(`example ${i + 1} passes policy check`, () => {
      expect(() => load(text)).not.toThrow();
    });
  }

  it('the pinned production example grants production to a push to main only', () => {
    const set = load(examples[1]!);
    const claims = githubClaims('https://token.actions.githubusercontent.com', {
      repository: 'acme/www', repository_id: '700000001',
      job_workflow_ref: 'acme/www/.github/workflows/deploy.yml@refs/heads/main',
    });
    expect(evaluate(set, 'www', claims)).toMatchObject({ granted: true, context: 'production' });
    expect(evaluate(set, 'www', { ...claims, runner_environment: 'self-hosted' }).granted).toBe(false);
    expect(evaluate(set, 'www', { ...claims, ref_protected: 'false' }).granted).toBe(false);
  });

  it('the fork-preview example grants previews to the pinned preview workflows only', () => {
    const set = load(examples[2]!);
    const claims = githubClaims('https://token.actions.githubusercontent.com', {
      repository: 'acme/www', repository_id: '700000001', event_name: 'pull_request_target',
      job_workflow_ref: 'acme/www/.github/workflows/preview.yml@refs/heads/main',
    });
    expect(evaluate(set, 'www-previews', claims)).toMatchObject({ granted: true, context: 'preview' });
    expect(evaluate(set, 'www-previews', { ...claims, job_workflow_ref: 'acme/www/.github/workflows/evil.yml@refs/heads/main' }).granted).toBe(false);
  });

  it('the monorepo org file covers app-* and admin, and nothing else', () => {
    const set = load(examples[3]!);
    const claims = githubClaims('https://token.actions.githubusercontent.com', {
      repository: 'acme/monorepo', repository_id: '903318846',
      job_workflow_ref: 'acme/monorepo/.github/workflows/deploy-apps.yml@refs/heads/main',
    });
    expect(evaluate(set, 'app-shop', claims)).toMatchObject({ granted: true, site: 'app-shop', context: 'production' });
    expect(evaluate(set, 'admin', claims).granted).toBe(true);
    expect(evaluate(set, 'docs', claims)).toMatchObject({ granted: false, reason: 'unknown_site' });
  });
});
