/** An org file governs only its own org's sites: the boundary a shared policies directory relies on. */
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { githubClaims } from '../helpers/issuer.js';
import { docsSite, monorepoOrg, productionRule, toYaml } from './fixtures.js';

const pushOnly = [productionRule({ when: { event_name: 'push' } })];
const victim = (org?: string) =>
  toYaml(docsSite({ org, repository: 'victim/docs', repository_id: '100', repository_owner_id: undefined, rules: pushOnly }));
const orgFile = (org: string, sites: string[], repository: string) =>
  toYaml(monorepoOrg({ org, sites, repository, repository_id: '200', repository_owner_id: undefined, rules: pushOnly }));
const evilPush = githubClaims('https://token.actions.githubusercontent.com', { repository: 'evil/mono', repository_owner: 'evil', repository_id: '200' });

function load(files: Record<string, string>) {
  return checkPolicyTexts(Object.entries(files).map(([file, text]) => ({ file, text })));
}

describe('org files and other organisations\' sites', () => {
  it('a glob in another org\'s file that matches a site file naming no org is refused at load', () => {
    const result = load({ 'docs.yml': victim(), 'evil.yml': orgFile('evil', ['*'], 'evil/mono') });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => `${p.file} ${p.message}`)).toEqual([expect.stringMatching(/^docs\.yml site "docs" is matched by "\*" of org "evil"/)]);
  });

  it('a glob in another org\'s file never reaches a site file it does not match', () => {
    const result = load({ 'docs.yml': victim(), 'evil.yml': orgFile('evil', ['evil-*'], 'evil/mono') });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(evaluate(result.set, 'docs', evilPush)).toMatchObject({ granted: false, reason: 'repository_mismatch' });
  });

  it('a literal slug of a site file that names no org is refused at load', () => {
    const result = load({ 'docs.yml': victim(), 'evil.yml': orgFile('evil', ['docs'], 'evil/mono') });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems[0]!.message).toMatch(/must say org: evil/);
  });

  it('an org file cannot claim an org its repository does not belong to', () => {
    const result = load({ 'docs.yml': victim('acme'), 'evil.yml': orgFile('acme', ['*'], 'evil/mono') });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => `${p.file}:${p.line} ${p.message}`).join('\n')).toMatch(/evil\.yml:\d+ .*"evil\/mono" is not in org "acme"/);
  });

  it('an org file still governs its own org\'s sites, with or without their site files', () => {
    const result = load({ 'docs.yml': victim('victim'), 'victim.yml': orgFile('victim', ['*'], 'victim/mono') });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const mono = githubClaims('https://token.actions.githubusercontent.com', { repository: 'victim/mono', repository_owner: 'victim', repository_id: '200' });
    expect(evaluate(result.set, 'docs', mono)).toMatchObject({ granted: true, file: 'victim.yml' });
    expect(evaluate(result.set, 'blog', mono)).toMatchObject({ granted: true, file: 'victim.yml' });
  });
});
