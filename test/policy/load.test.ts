import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPolicies, checkPolicyTexts, loadPolicyDir, loadPolicyText } from '../../exchange-service/policy/load.js';
import { PolicyLoadError, type PolicyProblem } from '../../exchange-service/policy/types.js';
import { docsSite, monorepoOrg, previewRule, productionRule, tempPolicyDir, toYaml } from './fixtures.js';

/** A YAML text from lines, so that line numbers in expectations are easy to read. */
const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

function problemsOf(files: Record<string, string>): string[] {
  const result = checkPolicyTexts(Object.entries(files).map(([file, text]) => ({ file, text })));
  if (result.ok) throw new Error('expected problems, got a valid policy set');
  return result.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);
}

/** The head of a valid site file; lines 1–4. Rules follow from line 5. */
const HEAD = ['site: docs', 'repository: acme/docs', 'repository_id: "892043217"', 'rules:'];

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
async function dirWith(files: Record<string, string>): Promise<string> {
  const { dir, cleanup } = await tempPolicyDir(files);
  cleanups.push(cleanup);
  return dir;
}

describe('loading policy text', () => {
  it('loads the spec example into rules with compiled conditions, in written order', () => {
    const set = loadPolicyText('docs.yml', toYaml(docsSite()));
    const [file] = set.forSite('docs');
    expect(file).toMatchObject({ file: 'docs.yml', kind: 'site', site: 'docs', org: 'acme', repository: 'acme/docs', repositoryId: '892043217', repositoryOwnerId: '51204' });
    expect(file!.rules.map((r) => [r.name, r.context, r.permissions, r.maxTtl])).toEqual([
      ['production', 'production', ['deployments:write'], 600],
      ['previews', 'preview', ['deployments:write'], 600],
    ]);
    expect(file!.rules[0]!.when.map((c) => c.claim)).toEqual(['event_name', 'ref', 'environment', 'job_workflow_ref']);
    expect(file!.rules[0]!.when[0]!.patterns).toEqual(['push', 'workflow_dispatch']);
  });

  it('defaults max_ttl to 10m and reads units', () => {
    const set = loadPolicyText('docs.yml', toYaml(docsSite({ rules: [productionRule({ max_ttl: undefined }), previewRule({ max_ttl: '90s' })] })));
    expect(set.forSite('docs')[0]!.rules.map((r) => r.maxTtl)).toEqual([600, 90]);
  });

  it('converts YAML booleans and numbers for ref_protected and actor_id to strings', () => {
    const text = yaml(...HEAD, '  - name: p', '    context: preview', '    permissions: [deployments:write]', '    when: { ref_protected: true, actor_id: [1234567, "42"] }');
    const rule = loadPolicyText('docs.yml', text).forSite('docs')[0]!.rules[0]!;
    expect(rule.when.map((c) => [c.claim, c.patterns])).toEqual([
      ['ref_protected', ['true']],
      ['actor_id', ['1234567', '42']],
    ]);
  });

  it('accepts repo_property_<name> conditions', () => {
    const set = loadPolicyText('docs.yml', toYaml(docsSite({ rules: [previewRule({ when: { event_name: 'workflow_run', repo_property_tier: ['gold', 'silver'] } })] })));
    expect(set.forSite('docs')[0]!.rules[0]!.when[1]).toMatchObject({ claim: 'repo_property_tier', patterns: ['gold', 'silver'] });
  });

  it('throws PolicyLoadError whose message lists file:line:column: message', () => {
    let error: unknown;
    try {
      loadPolicyText('docs.yml', yaml('site: Docs', ...HEAD.slice(1), '  - name: p', '    context: preview', '    permissions: [deployments:write]', '    when: {}'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyLoadError);
    expect((error as PolicyLoadError).problems).toEqual([
      { file: 'docs.yml', line: 1, column: 7, message: expect.stringContaining('site must be a slug') } satisfies PolicyProblem,
    ]);
    expect((error as PolicyLoadError).message).toMatch(/^docs\.yml:1:7: site must be a slug/);
  });
});

describe('load errors point at the offending node', () => {
  it('reports an unknown top-level key at the key, naming the allowed keys', () => {
    expect(problemsOf({ 'docs.yml': yaml(...HEAD.slice(0, 3), 'orgg: acme', ...HEAD.slice(3), '  - name: p', '    context: preview', '    permissions: [deployments:write]', '    when: {}') })).toEqual([
      'docs.yml:4:1: unknown key "orgg" (did you mean "org"?): a site file allows only site, org, issuer, repository, repository_id, repository_owner_id, token_audience, upstream, rules',
    ]);
  });

  it('refuses an unknown when key (a typo must not widen access), naming the allowed keys', () => {
    const text = yaml(...HEAD, '  - name: previews', '    context: preview', '    permissions: [deployments:write]', '    when:', '      event_name: workflow_run', '      branch: main');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      'docs.yml:10:7: rules[0].when: unknown condition "branch": a when key is one of ref, ref_type, ref_protected, event_name, environment, job_workflow_ref, workflow_ref, runner_environment, repository_visibility, base_ref, head_ref, actor_id or repo_property_<name>',
    ]);
  });

  it('refuses an unknown key in a rule', () => {
    const text = yaml(...HEAD, '  - name: previews', '    context: preview', '    permission: [deployments:write]', '    when: {}');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      'docs.yml:5:5: rules[0]: permissions is required, e.g. permissions: [deployments:write]',
      'docs.yml:7:5: rules[0]: unknown key "permission" (did you mean "permissions"?): a rule allows only name, context, permissions, max_ttl, when',
    ]);
  });

  it('requires repository_id as a quoted string and says how to fix it', () => {
    const text = yaml('site: docs', 'repository: acme/docs', 'repository_id: 892043217', 'rules:', '  - { name: p, context: preview, permissions: [deployments:write], when: {} }');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      'docs.yml:3:16: repository_id must be a quoted string, e.g. repository_id: "892043217" (an unquoted number can silently lose digits)',
    ]);
  });

  it('points into lists: a bad permission and a malformed glob', () => {
    const text = yaml(...HEAD, '  - name: p', '    context: preview', '    permissions: [deployments:write, deploy:all]', '    when:', '      ref: [refs/heads/main, "refs/***"]');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      expect.stringMatching(/^docs\.yml:7:38: rules\[0\]\.permissions\[1\]: "deploy:all" is not a known permission \(known: /),
      'docs.yml:9:30: rules[0].when.ref[1]: "***" is not a wildcard: use * (any characters except /) or ** (any characters, / included)',
    ]);
  });

  it('refuses a max_ttl above the 1h hard cap', () => {
    const text = yaml(...HEAD, '  - name: p', '    context: preview', '    permissions: [deployments:write]', '    max_ttl: 2h', '    when: {}');
    expect(problemsOf({ 'docs.yml': text })).toEqual(['docs.yml:8:14: rules[0]: max_ttl must be between 1s and 1h (the hard cap), got "2h"']);
  });

  it('refuses duplicate rule names at the second name', () => {
    const text = yaml(...HEAD, '  - { name: p, context: preview, permissions: [deployments:write], when: {} }', '  - { name: p, context: preview, permissions: [sites:read], when: {} }');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      'docs.yml:6:13: rules[1].name: rule name "p" is already used by rules[0]: rule names must be unique within a file',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their position', () => {
    expect(problemsOf({ 'a.yml': yaml('site: docs', 'site: other') })).toEqual([expect.stringMatching(/^a\.yml:2:1: YAML: Map keys must be unique/)]);
    expect(problemsOf({ 'b.yml': yaml('rules: [', '  a') })).toEqual([expect.stringMatching(/^b\.yml:\d+:\d+: YAML: /)]);
  });

  it('refuses empty files, non-mappings and a file that is both kinds', () => {
    expect(problemsOf({ 'a.yml': '' })).toEqual([expect.stringMatching(/^a\.yml:1:1: the file is empty/)]);
    expect(problemsOf({ 'b.yml': yaml('- docs') })).toEqual([expect.stringMatching(/^b\.yml:1:1: a policy file must be a mapping/)]);
    expect(problemsOf({ 'c.yml': yaml('site: docs', 'sites: [app-*]') })).toEqual([
      'c.yml:2:1: a file is either a site file (site:) or an org file (org: and sites:), not both',
    ]);
  });

  it('checks repository as owner/name and the site slug format', () => {
    const text = yaml('site: -docs', 'repository: acme', 'repository_id: "892043217"', 'rules:', '  - { name: p, context: preview, permissions: [deployments:write], when: {} }');
    expect(problemsOf({ 'docs.yml': text })).toEqual([
      expect.stringMatching(/^docs\.yml:1:7: site must be a slug/),
      'docs.yml:2:13: repository must be owner/name as on GitHub, e.g. acme/docs',
    ]);
  });

  it('lists every problem of every file, in file order', () => {
    const problems = problemsOf({
      'a.yml': yaml('site: a', 'repository: acme/a', 'repository_id: "1"', 'rules:', '  - { name: p, context: nope, permissions: [deployments:write], when: {} }'),
      'b.yml': yaml('site: b', 'repository: acme/b', 'repository_id: "2"', 'rules: []', 'extra: 1'),
    });
    expect(problems).toEqual([
      'a.yml:5:25: rules[0]: context must be production or preview, got "nope"',
      'b.yml:4:8: rules must list at least one rule',
      'b.yml:5:1: unknown key "extra": a site file allows only site, org, issuer, repository, repository_id, repository_owner_id, token_audience, upstream, rules',
    ]);
  });

  it('refuses a site defined by two site files, at the second', () => {
    expect(problemsOf({ 'a.yml': toYaml(docsSite()), 'b.yml': toYaml(docsSite()) })).toEqual([
      'b.yml:1:7: site "docs" is already defined in a.yml: a site has exactly one site file (put rules shared by several sites in an org file)',
    ]);
  });

  it("refuses an org file naming another org's site", () => {
    const beta = docsSite({ org: 'beta', repository: 'beta/docs' });
    const problems = problemsOf({ 'a.yml': toYaml(beta), 'b.yml': toYaml(monorepoOrg({ sites: ['app-*', 'docs'] })) });
    expect(problems).toEqual([expect.stringMatching(/^a\.yml:1:7: site "docs" is matched by "docs" of org "acme" \(b\.yml\): a site file whose slug an org's sites match must say org: acme/)]);
  });
});

describe('the fork-PR invariant at load', () => {
  const production = (when: string) =>
    yaml(...HEAD, '  - name: production', '    context: production', '    permissions: [deployments:write]', `    when: ${when}`);

  it('refuses production for pull_request_target, saying why and how to fix it', () => {
    const [problem] = problemsOf({ 'docs.yml': production('{ event_name: pull_request_target }') });
    expect(problem).toMatch(/^docs\.yml:8:25: rules\[0\]\.when\.event_name: a production rule may not match event "pull_request_target": /);
    expect(problem).toContain('only trusted events (push, workflow_dispatch, schedule, release, merge_group) may receive production');
    expect(problem).toContain('run with fork code and must only get preview');
    expect(problem).toContain('Fix: restrict event_name to trusted events, or give this rule context: preview');
  });

  it('refuses production for workflow_run among trusted events, pointing at that entry', () => {
    expect(problemsOf({ 'docs.yml': production('{ event_name: [push, workflow_run] }') })).toEqual([
      expect.stringMatching(/^docs\.yml:8:32: rules\[0\]\.when\.event_name\[1\]: a production rule may not match event "workflow_run"/),
    ]);
  });

  it('refuses production without an event_name condition', () => {
    const problems = problemsOf({ 'docs.yml': production('{ ref: refs/heads/main }') });
    expect(problems).toEqual([expect.stringMatching(/^docs\.yml:6:14: rules\[0\]\.context: a production rule needs an event_name condition listing only trusted events/)]);
    expect(problems[0]).toContain('Fix: add e.g. event_name: [push, workflow_dispatch] to when, or give this rule context: preview');
  });

  it.each(['"*"', 'push*', '"**"'])('refuses production for the glob %s', (glob) => {
    expect(problemsOf({ 'docs.yml': production(`{ event_name: ${glob} }`) })).toEqual([
      expect.stringMatching(/rules\[0\]\.when\.event_name: a production rule must name its events literally, but ".*" is a glob that could match untrusted events/),
    ]);
  });

  it('refuses production for an unknown event name', () => {
    expect(problemsOf({ 'docs.yml': production('{ event_name: Push }') })).toEqual([expect.stringContaining('may not match event "Push"')]);
  });

  it('accepts the same conditions on a preview rule', () => {
    const text = yaml(...HEAD, '  - name: previews', '    context: preview', '    permissions: [deployments:write]', '    when: { event_name: "*" }');
    expect(() => loadPolicyText('docs.yml', text)).not.toThrow();
  });

  it('reports the invariant even when the rule has other problems', () => {
    const text = yaml(...HEAD, '  - name: production', '    context: production', '    permissions: [bogus]', '    when: { event_name: issue_comment }');
    const problems = problemsOf({ 'docs.yml': text });
    expect(problems).toHaveLength(2);
    expect(problems[1]).toContain('may not match event "issue_comment"');
  });
});

describe('loading a directory', () => {
  it('loads every *.yml and *.yaml file in name order, non-recursively, skipping dotfiles', async () => {
    const dir = await dirWith({
      'b-docs.yaml': toYaml(docsSite()),
      'a-apps.yml': toYaml(monorepoOrg()),
      'README.md': '# not a policy',
      '.hidden.yml': 'not: [valid',
      'nested/other.yml': 'not: [valid',
    });
    const set = await loadPolicyDir(dir);
    expect(set.files.map((f) => f.file)).toEqual(['a-apps.yml', 'b-docs.yaml']);
  });

  it('follows symlinked files (as Kubernetes ConfigMap volumes use)', async () => {
    const dir = await dirWith({ '..data/docs.yml': toYaml(docsSite()) });
    await symlink(path.join(dir, '..data', 'docs.yml'), path.join(dir, 'docs.yml'));
    const set = await loadPolicyDir(dir);
    expect(set.forSite('docs')).toHaveLength(1);
  });

  it('names problems by their path in the directory', async () => {
    const dir = await dirWith({ 'docs.yml': yaml('site: docs', 'repository: acme/docs', 'repository_id: 892043217', 'rules: []') });
    const result = await checkPolicies(dir);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => `${p.file}:${p.line}:${p.column}`)).toEqual([`${path.join(dir, 'docs.yml')}:3:16`, `${path.join(dir, 'docs.yml')}:4:8`]);
  });

  it('refuses a directory without policy files', async () => {
    const dir = await dirWith({ 'README.md': 'nothing here' });
    await expect(loadPolicyDir(dir)).rejects.toThrow(`${dir}: no policy files in ${dir} (expected *.yml or *.yaml files)`);
    const empty = await dirWith({});
    const result = await checkPolicies(empty);
    expect(result).toEqual({ ok: false, problems: [{ file: empty, line: 0, column: 0, message: expect.stringContaining('no policy files in') }], warnings: [] });
  });

  it('refuses a missing directory', async () => {
    const dir = await dirWith({});
    const missing = path.join(dir, 'nope');
    await expect(loadPolicyDir(missing)).rejects.toThrow(`${missing}: the policies directory does not exist`);
  });

  it('refuses a path that is a file', async () => {
    const dir = await dirWith({ 'docs.yml': toYaml(docsSite()) });
    const result = await checkPolicies(path.join(dir, 'docs.yml'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.message).toBe('the policies directory is not a directory');
  });

  it('refuses a file that is not UTF-8, along with the problems of other files', async () => {
    const dir = await dirWith({ 'b.yml': toYaml(docsSite({ site: 'Bad' })) });
    await writeFile(path.join(dir, 'a.yml'), Buffer.from([0x73, 0x69, 0x74, 0x65, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    const result = await checkPolicies(dir);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.map((p) => p.message)).toEqual(['the file is not valid UTF-8', expect.stringContaining('site must be a slug')]);
    }
  });

  it('summarises a valid set', async () => {
    const dir = await dirWith({ 'docs.yml': toYaml(docsSite()), 'apps.yml': toYaml(monorepoOrg({ sites: ['app-*', 'app-web'] })) });
    await mkdir(path.join(dir, 'archive.yml'));
    const result = await checkPolicies(dir);
    expect(result).toMatchObject({ ok: true, summary: '2 policy files (1 site, 1 org), 2 sites named, 4 rules (2 production, 2 preview)' });
  });
});

describe('the example policies', () => {
  it('load without error', async () => {
    const result = await checkPolicies(path.join(import.meta.dirname, '../../examples/policies'));
    if (!result.ok) throw new PolicyLoadError(result.problems);
    expect(result.set.forSite('docs')).toHaveLength(1);
    expect(result.set.forSite('app-web').map((f) => f.file)).toEqual(['acme-monorepo.yml']);
  });
});
