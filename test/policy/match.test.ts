import { describe, expect, it } from 'vitest';
import { compileCondition } from '../../exchange-service/policy/condition.js';
import { evaluate, evaluateRule } from '../../exchange-service/policy/match.js';
import type { Decision, Rule } from '../../exchange-service/policy/types.js';
import { DOCS_REPOSITORY_ID, docsClaims, docsSite, monorepoClaims, monorepoOrg, previewRule, productionRule, policySet } from './fixtures.js';

const docs = () => policySet({ 'docs.yml': docsSite() });

function granted(d: Decision): Extract<Decision, { granted: true }> {
  if (!d.granted) throw new Error(`expected a grant, got ${d.reason}: ${d.description}`);
  return d;
}
function denied(d: Decision): Extract<Decision, { granted: false }> {
  if (d.granted) throw new Error(`expected a denial, got ${d.context} by rule ${d.rule.name}`);
  return d;
}

describe('a push to main through the pinned workflow in the production environment', () => {
  it('gets production from the production rule', () => {
    const d = granted(evaluate(docs(), 'docs', docsClaims()));
    expect(d).toMatchObject({ site: 'docs', org: 'acme', file: 'docs.yml', context: 'production', rule: { name: 'production', maxTtl: 600 } });
    expect(d.trace.map((t) => [t.rule, t.matched])).toEqual([['production', true]]);
  });

  it('carries the file token_audience when set', () => {
    const set = policySet({ 'docs.yml': docsSite({ token_audience: 'https://deploy.acme.test' }) });
    expect(granted(evaluate(set, 'docs', docsClaims())).tokenAudience).toBe('https://deploy.acme.test');
  });
});

describe('fork pull requests', () => {
  it.each(['pull_request_target', 'workflow_run'])('get a preview on %s', (event_name) => {
    const d = granted(evaluate(docs(), 'docs', docsClaims({ event_name })));
    expect(d.context).toBe('preview');
    expect(d.trace[0]!.failure).toContain(`event_name "${event_name}" is not a trusted event`);
  });

  it('never get production, whatever the policy says (runtime invariant)', () => {
    // A rule that bypassed the loader: production with no event condition at all.
    const rule: Rule = { name: 'unsafe', context: 'production', permissions: ['deployments:write'], maxTtl: 600, when: [compileCondition('ref', ['refs/heads/main'])] };
    const trace = evaluateRule(rule, docsClaims({ event_name: 'pull_request_target' }), 'hand-made.yml');
    expect(trace.matched).toBe(false);
    expect(trace.failure).toBe(
      'event_name "pull_request_target" is not a trusted event: a production rule never matches it, whatever the policy says ' +
        '(only push, workflow_dispatch, schedule, release, merge_group can receive production; other events can run fork code and get preview at most)',
    );
    expect(evaluateRule(rule, docsClaims({ event_name: 'push' })).matched).toBe(true);
    expect(evaluateRule(rule, docsClaims({ event_name: undefined })).failure).toMatch(/^event_name is absent/);
  });
});

describe('unknown sites', () => {
  it('are refused without any other detail', () => {
    expect(evaluate(docs(), 'blog', docsClaims())).toEqual({
      granted: false,
      site: 'blog',
      reason: 'unknown_site',
      bound: false,
      trace: [],
      description: 'site "blog" is not known to this service',
    });
  });

  it('include names that are not slugs, even when an org glob would match them', () => {
    const set = policySet({ 'apps.yml': monorepoOrg() });
    for (const site of ['app-x/../docs', 'APP-X', 'app-x\n', 'app-' + 'x'.repeat(70)]) {
      expect(denied(evaluate(set, site, monorepoClaims())).reason).toBe('unknown_site');
    }
  });
});

describe('repository binding', () => {
  it('refuses a foreign repository generically, revealing nothing of the policy', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ repository: 'acme/evil', repository_id: '999999' })));
    expect(d).toMatchObject({ reason: 'repository_mismatch', bound: false, description: 'repository "acme/evil" may not deploy site "docs"' });
    expect(d.trace.every((t) => !t.matched)).toBe(true);
  });

  it('tells acme/docs-evil from acme/docs', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ repository: 'acme/docs-evil', repository_id: '1000' })));
    expect(d.description).toBe('repository "acme/docs-evil" may not deploy site "docs"');
  });

  it('refuses a re-created repository (same name, new id), with the specific reason in the trace only', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ repository_id: '1234567890' })));
    expect(d).toMatchObject({ reason: 'repository_mismatch', bound: false, description: 'repository "acme/docs" may not deploy site "docs"' });
    expect(d.trace[0]!.failure).toMatch(/^repository_id "1234567890" is not "892043217": this is a different repository that has the name "acme\/docs" \(deleted and re-created/);
    expect(d.trace[0]!.failure).toContain('update repository_id in docs.yml');
  });

  it('refuses the right id under another name (a transferred or renamed repository) until the policy says so', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ repository: 'other/docs' })));
    expect(d.reason).toBe('repository_mismatch');
  });

  it('compares the repository name case-insensitively and ids exactly', () => {
    expect(granted(evaluate(docs(), 'docs', docsClaims({ repository: 'ACME/Docs' }))).context).toBe('production');
    expect(denied(evaluate(docs(), 'docs', docsClaims({ repository_id: ` ${DOCS_REPOSITORY_ID}` }))).reason).toBe('repository_mismatch');
    expect(denied(evaluate(docs(), 'docs', docsClaims({ repository_id: Number(DOCS_REPOSITORY_ID) }))).reason).toBe('repository_mismatch');
  });

  it('checks repository_owner_id when the file sets it', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ repository_owner_id: '777' })));
    expect(d.reason).toBe('repository_mismatch');
    expect(d.trace[0]!.failure).toBe('repository_owner_id "777" is not "51204"');
    const lax = policySet({ 'docs.yml': docsSite({ repository_owner_id: undefined }) });
    expect(granted(evaluate(lax, 'docs', docsClaims({ repository_owner_id: '777' }))).context).toBe('production');
  });
});

describe('denials for the bound repository', () => {
  it('list every rule with its first failed condition', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ ref: 'refs/heads/feature' })));
    expect(d).toMatchObject({ reason: 'no_rule_matched', bound: true });
    expect(d.description).toBe(
      'site "docs": rule "production": ref "refs/heads/feature" is not one of ["refs/heads/main"]; ' +
        'rule "previews": event_name "push" is not one of ["pull_request_target","workflow_run"]',
    );
  });

  it('tell refs/heads/main-evil from refs/heads/main', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ ref: 'refs/heads/main-evil' })));
    expect(d.description).toContain('rule "production": ref "refs/heads/main-evil" is not one of ["refs/heads/main"]');
  });

  it('say when a claim is absent', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ environment: undefined })));
    expect(d.description).toContain('rule "production": environment is absent (the job has no environment)');
  });

  it('say when a claim is not a string (type confusion never matches)', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ environment: ['production'] })));
    expect(d.description).toContain('rule "production": environment is not a string (got an array)');
  });

  it('record every condition of every rule in the trace', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ ref: 'refs/heads/feature' })));
    expect(d.trace[0]!.conditions.map((c) => [c.claim, c.ok])).toEqual([
      ['event_name', true], // the engine's trusted-event check for production rules
      ['event_name', true],
      ['ref', false],
      ['environment', true],
      ['job_workflow_ref', true],
    ]);
    expect(d.trace[0]!.conditions[2]).toEqual({
      claim: 'ref',
      patterns: ['refs/heads/main'],
      value: 'refs/heads/feature',
      ok: false,
      why: 'ref "refs/heads/feature" is not one of ["refs/heads/main"]',
    });
  });
});

describe('case rules', () => {
  it('compare refs case-sensitively', () => {
    expect(denied(evaluate(docs(), 'docs', docsClaims({ ref: 'refs/heads/Main' }))).reason).toBe('no_rule_matched');
  });

  it('compare environment names case-insensitively', () => {
    expect(granted(evaluate(docs(), 'docs', docsClaims({ environment: 'Production' }))).context).toBe('production');
  });

  it('compare the owner/repo of a workflow ref case-insensitively and its path@ref exactly', () => {
    expect(granted(evaluate(docs(), 'docs', docsClaims({ job_workflow_ref: 'ACME/Docs/.github/workflows/deploy.yml@refs/heads/main' }))).context).toBe('production');
    const d = denied(evaluate(docs(), 'docs', docsClaims({ job_workflow_ref: 'acme/docs/.github/workflows/Deploy.yml@refs/heads/main' })));
    expect(d.description).toContain('job_workflow_ref "acme/docs/.github/workflows/Deploy.yml@refs/heads/main" is not one of');
    expect(denied(evaluate(docs(), 'docs', docsClaims({ job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/MAIN' }))).reason).toBe('no_rule_matched');
  });

  it('do not let a reusable workflow from another repository pass', () => {
    const d = denied(evaluate(docs(), 'docs', docsClaims({ job_workflow_ref: 'evil/docs/.github/workflows/deploy.yml@refs/heads/main' })));
    expect(d.reason).toBe('no_rule_matched');
  });

  it('compare actor ids exactly', () => {
    const set = policySet({ 'docs.yml': docsSite({ rules: [previewRule({ when: { event_name: 'workflow_run', actor_id: '1234567' } })] }) });
    expect(granted(evaluate(set, 'docs', docsClaims({ event_name: 'workflow_run' }))).context).toBe('preview');
    expect(denied(evaluate(set, 'docs', docsClaims({ event_name: 'workflow_run', actor_id: '12345678' }))).reason).toBe('no_rule_matched');
  });

  it('treat an empty claim as absent, even for a * pattern', () => {
    const set = policySet({ 'docs.yml': docsSite({ rules: [previewRule({ when: { head_ref: '*' } })] }) });
    const d = denied(evaluate(set, 'docs', docsClaims({ head_ref: '' })));
    expect(d.description).toBe('site "docs": rule "previews": head_ref is empty (only pull request events set it)');
  });
});

describe('rule order', () => {
  it('takes the first rule whose every condition matches', () => {
    const set = policySet({
      'docs.yml': docsSite({
        rules: [previewRule({ name: 'first', when: { ref: 'refs/heads/*' } }), productionRule()],
      }),
    });
    const d = granted(evaluate(set, 'docs', docsClaims()));
    expect([d.rule.name, d.context]).toEqual(['first', 'preview']);
  });
});

describe('org files for a monorepo', () => {
  const set = () => policySet({ 'docs.yml': docsSite(), 'apps.yml': monorepoOrg() });

  it('give every matching site the org file rules', () => {
    for (const site of ['app-web', 'app-admin']) {
      const d = granted(evaluate(set(), site, monorepoClaims()));
      expect(d).toMatchObject({ site, org: 'acme', file: 'apps.yml', context: 'production' });
    }
  });

  it('do not govern sites outside their globs', () => {
    expect(denied(evaluate(set(), 'docs', monorepoClaims())).reason).toBe('repository_mismatch');
    expect(denied(evaluate(set(), 'appweb', monorepoClaims())).reason).toBe('unknown_site');
  });

  it('bind their own repository only', () => {
    const d = denied(evaluate(set(), 'app-web', docsClaims()));
    expect(d).toMatchObject({ reason: 'repository_mismatch', description: 'repository "acme/docs" may not deploy site "app-web"' });
  });

  it('add to a site file for the same site, after it', () => {
    const both = policySet({ 'app-web.yml': docsSite({ site: 'app-web' }), 'apps.yml': monorepoOrg() });
    expect(both.forSite('app-web').map((f) => f.file)).toEqual(['app-web.yml', 'apps.yml']);
    expect(granted(evaluate(both, 'app-web', docsClaims())).file).toBe('app-web.yml');
    expect(granted(evaluate(both, 'app-web', monorepoClaims())).file).toBe('apps.yml');
  });

  it("never reach a site that its site file puts in another org (such a set does not load)", () => {
    expect(() => policySet({ 'app-beta.yml': docsSite({ site: 'app-beta', org: 'beta', repository: 'beta/app' }), 'apps.yml': monorepoOrg() })).toThrow(
      /app-beta\.yml:1:7: site "app-beta" is matched by "app-\*" of org "acme"/,
    );
  });

  it('explain denials with the org file rules', () => {
    const d = denied(evaluate(set(), 'app-web', monorepoClaims({ environment: 'staging' })));
    expect(d.description).toBe(
      'site "app-web": rule "production": environment "staging" is not one of ["production"]; ' +
        'rule "previews": event_name "push" is not one of ["pull_request_target","workflow_run"]',
    );
  });

  it('count literally named sites', () => {
    expect(policySet({ 'docs.yml': docsSite(), 'apps.yml': monorepoOrg({ sites: ['app-*', 'app-web', 'docs'] }) }).siteCount()).toBe(2);
  });
});
