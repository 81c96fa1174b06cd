/**
 * Every site has exactly one owner. Attacks on the boundaries between policy files in one shared directory: another
 * org's glob or literal slug reaching acme's sites, a site file claiming an org that does not own its repository, a
 * site file quietly carving a slug out of acme's glob. Each is a load error at `file:line:column` with the fix, so
 * the service never starts (nor reloads) with such a set.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { formatPolicyProblem } from '../../exchange-service/policy/types.js';
import { startService } from '../helpers/service.js';
import { docsClaims, docsSite, monorepoClaims, monorepoOrg, productionRule, toYaml } from '../policy/fixtures.js';
import { NO_RATE_LIMITS, policyDir } from './support.js';

const pushOnly = [productionRule({ when: { event_name: 'push' } })];
const acme = (sites: string[] = ['app-*']) => toYaml(monorepoOrg({ sites, rules: pushOnly }));
const evilOrg = (sites: string[]) =>
  toYaml(monorepoOrg({ org: 'evil', sites, repository: 'evil/mono', repository_id: '666', repository_owner_id: undefined, rules: pushOnly }));
const evilClaims = monorepoClaims({ repository: 'evil/mono', repository_owner: 'evil', repository_id: '666', repository_owner_id: '667' });

function load(files: Record<string, string>) {
  return checkPolicyTexts(Object.entries(files).map(([file, text]) => ({ file, text })));
}
function problems(files: Record<string, string>): string[] {
  const result = load(files);
  if (result.ok) {
    // Before the ownership model: say what the attacker would have got.
    const granted = ['app-web', 'docs'].map((site) => [site, evaluate(result.set, site, evilClaims)] as const).filter(([, d]) => d.granted);
    return [`loaded${granted.length ? `; evil/mono granted ${granted.map(([s]) => s).join(', ')}` : ''}`];
  }
  return result.problems.map(formatPolicyProblem);
}
/** 1-based line of the first line of `text` containing `needle`, and the column of the needle. */
function position(text: string, needle: string): string {
  const lines = text.split('\n');
  const index = lines.findIndex((l) => l.includes(needle));
  return `${index + 1}:${lines[index]!.indexOf(needle) + 1}`;
}

describe('a site governed only by an org file', () => {
  it('cannot be claimed by another org\'s sites: ["*"]', () => {
    const evil = evilOrg(['*']);
    expect(problems({ 'acme.yml': acme(), 'evil.yml': evil })).toEqual([
      expect.stringMatching(
        new RegExp(`^evil\\.yml:${position(evil, '"*"')}: sites\\[0\\]: "\\*" can match the same site as "app-\\*" of org "acme" \\(acme\\.yml\\), e\\.g\\. "app-": a site is governed by one org only\\. Fix: `),
      ),
    ]);
  });

  it('cannot be claimed by another org naming the same slug literally', () => {
    expect(problems({ 'acme.yml': acme(['app-web']), 'evil.yml': evilOrg(['app-web']) })).toEqual([
      expect.stringMatching(/^evil\.yml:\d+:\d+: sites\[0\]: "app-web" can match the same site as "app-web" of org "acme" \(acme\.yml\)/),
    ]);
  });

  it('cannot be claimed by a glob that overlaps only in part (decided exactly, not sampled)', () => {
    expect(problems({ 'acme.yml': acme(['app-*']), 'evil.yml': evilOrg(['*-web']) })).toEqual([expect.stringMatching(/e\.g\. "app-web"/)]);
    expect(problems({ 'acme.yml': acme(['a*z']), 'evil.yml': evilOrg(['*-*']) })).toEqual([expect.stringMatching(/e\.g\. "a-z"/)]);
  });

  it('stays with its org when the other org\'s patterns cannot match a common slug', () => {
    expect(load({ 'acme.yml': acme(['app-*', 'admin']), 'evil.yml': evilOrg(['evil-*', 'web-*', '-*']) }).ok).toBe(true);
  });

  it('may be governed by several org files of the same org', () => {
    const second = toYaml(monorepoOrg({ sites: ['*'], repository: 'acme/platform', repository_id: '777', rules: pushOnly }));
    expect(load({ 'acme.yml': acme(), 'acme-platform.yml': second }).ok).toBe(true);
  });
});

describe('a site file', () => {
  it('may not claim an org that does not own its repository', () => {
    const forged = toYaml(docsSite({ site: 'app-web', org: 'acme', repository: 'evil/x', repository_id: '666', repository_owner_id: undefined, rules: pushOnly }));
    expect(problems({ 'acme.yml': acme(), 'app-web.yml': forged })).toEqual([
      `app-web.yml:${position(forged, 'evil/x')}: repository: a site file's repository must belong to its org: "evil/x" is not in org "acme". Fix: bind a repository of acme, or drop org: (the site then belongs to no org file)`,
    ]);
  });

  it('whose slug an org\'s pattern matches must name that org', () => {
    const carved = toYaml(docsSite({ site: 'app-web', org: undefined, repository: 'evil/x', repository_id: '666', repository_owner_id: undefined, rules: pushOnly }));
    expect(problems({ 'acme.yml': acme(), 'app-web.yml': carved })).toEqual([
      `app-web.yml:${position(carved, 'app-web')}: site "app-web" is matched by "app-*" of org "acme" (acme.yml): a site file whose slug an org's sites match must say org: acme, and bind a repository of acme. Fix: add org: acme, rename the site, or narrow acme's sites`,
    ]);
  });

  it('naming another org is refused in the same way', () => {
    const other = toYaml(docsSite({ site: 'app-web', org: 'evil', repository: 'evil/x', repository_id: '666', repository_owner_id: undefined, rules: pushOnly }));
    expect(problems({ 'acme.yml': acme(), 'app-web.yml': other })).toEqual([expect.stringMatching(/^app-web\.yml:\d+:\d+: site "app-web" is matched by "app-\*" of org "acme"/)]);
  });

  it('of the org itself is governed by its site file first, then the org file', () => {
    const own = toYaml(docsSite({ site: 'app-web', rules: pushOnly }));
    const result = load({ 'acme.yml': acme(), 'app-web.yml': own });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.set.forSite('app-web').map((f) => f.file)).toEqual(['app-web.yml', 'acme.yml']);
    expect(evaluate(result.set, 'app-web', docsClaims({ event_name: 'push' }))).toMatchObject({ granted: true, org: 'acme', file: 'app-web.yml' });
  });
});

describe('the service', () => {
  it('does not start with a directory where two orgs can govern one site', async () => {
    const dir = policyDir({ 'acme.yml': acme(), 'evil.yml': evilOrg(['*']) });
    try {
      await expect(startService({ issuer: 'http://127.0.0.1:9', policies: dir, env: NO_RATE_LIMITS })).rejects.toThrow(/evil\.yml:\d+:\d+: sites\[0\]: "\*" can match the same site as "app-\*"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
