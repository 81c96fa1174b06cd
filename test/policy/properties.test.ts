import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TRUSTED_EVENTS, isTrustedEvent } from '../../exchange-service/oidc/claims.js';
import { compileCondition } from '../../exchange-service/policy/condition.js';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { evaluate, grantOf } from '../../exchange-service/policy/match.js';
import { createPolicySet } from '../../exchange-service/policy/set.js';
import type { PolicyFile, PolicySet, Rule } from '../../exchange-service/policy/types.js';
import { ACME_OWNER_ID, DOCS_REPOSITORY_ID, GITHUB_ISSUER, MONOREPO_ID, docsClaims, docsSite, monorepoClaims, monorepoOrg, policySet, toYaml } from './fixtures.js';

const ABSENT = Symbol('absent');
type Pick = string | number | string[] | typeof ABSENT;

/** Claims built from one choice per field; ABSENT removes the claim. */
function claimsFrom(choices: Record<string, Pick>): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(choices)) overrides[k] = v === ABSENT ? undefined : v;
  return docsClaims(overrides);
}

const UNTRUSTED = ['pull_request', 'pull_request_target', 'workflow_run', 'issue_comment', 'Push', 'PUSH', 'push ', 'deployment', ''];
const anyEvent = fc.oneof(fc.constantFrom(...TRUSTED_EVENTS, ...UNTRUSTED), fc.string({ maxLength: 20 }));


/** Rules as a hand-made PolicyFile may hold them, past the loader's checks: any context, wide event patterns or none. */
function handMadeRules(minLength: number) {
  const wide = fc.constantFrom('*', '**', 'pull_request*', 'workflow_run', 'push', '**_**');
  return fc.array(
    fc.record({
      context: fc.constantFrom('production' as const, 'preview' as const),
      events: fc.option(fc.array(wide, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    }),
    { minLength, maxLength: 4 },
  );
}

/** The docs site's file with these rules, built directly (the loader would refuse production to untrusted events). */
function handMadeFile(specs: { context: 'production' | 'preview'; events: string[] | undefined }[], ownerBound: boolean): PolicyFile {
  return {
    file: 'hand-made.yml',
    kind: 'site',
    site: 'docs',
    issuer: GITHUB_ISSUER,
    issuers: [GITHUB_ISSUER],
    repository: 'acme/docs',
    repositoryId: DOCS_REPOSITORY_ID,
    ...(ownerBound ? { repositoryOwnerId: ACME_OWNER_ID } : {}),
    rules: specs.map(
      (s, i): Rule => ({
        name: `r${i}`,
        context: s.context,
        permissions: ['deployments:write'],
        maxTtl: 600,
        when: s.events ? [compileCondition('event_name', s.events)] : [],
      }),
    ),
  };
}

describe('properties of the policy engine', () => {
  it('never throws, whatever the site and the claims (any JSON)', () => {
    const set = policySet({ 'docs.yml': docsSite(), 'apps.yml': monorepoOrg() });
    const claimName = fc.constantFrom('repository', 'repository_id', 'repository_owner_id', 'event_name', 'ref', 'environment', 'job_workflow_ref', '__proto__', 'constructor', 'toString');
    const claims = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(claimName, fc.jsonValue()).map((extra) => ({ ...docsClaims(), ...extra })),
      fc.dictionary(fc.string(), fc.jsonValue()),
    );
    const site = fc.oneof(fc.constantFrom('docs', 'app-web', 'app-', 'blog', '__proto__', 'constructor'), fc.string());
    fc.assert(
      fc.property(site, claims, (s, c) => {
        const d = evaluate(set, s, c as Record<string, unknown>);
        expect(typeof d.granted).toBe('boolean');
        if (!d.granted) {
          expect(typeof d.description).toBe('string');
          if (d.reason !== 'no_rule_matched') expect(d.bound).toBe(false);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('grants exactly when every required condition holds (docs policy against an independent oracle)', () => {
    const set = policySet({ 'docs.yml': docsSite() });
    const WORKFLOW = 'acme/docs/.github/workflows/deploy.yml@refs/heads/main';
    const choices = fc.record({
      repository: fc.constantFrom<Pick>('acme/docs', 'ACME/Docs', 'acme/docs-evil', 'evil/docs', 'acme/doc', ABSENT, 42),
      repository_id: fc.constantFrom<Pick>(DOCS_REPOSITORY_ID, '1', `${DOCS_REPOSITORY_ID}0`, ABSENT, Number(DOCS_REPOSITORY_ID)),
      repository_owner_id: fc.constantFrom<Pick>(ACME_OWNER_ID, '9', ABSENT),
      event_name: fc.constantFrom<Pick>(...TRUSTED_EVENTS, ...UNTRUSTED, ABSENT),
      ref: fc.constantFrom<Pick>('refs/heads/main', 'refs/heads/Main', 'refs/heads/main-evil', 'refs/heads/feature', '', ABSENT, ['refs/heads/main']),
      environment: fc.constantFrom<Pick>('production', 'PRODUCTION', 'production-eu', 'staging', '', ABSENT),
      job_workflow_ref: fc.constantFrom<Pick>(
        WORKFLOW,
        'Acme/DOCS/.github/workflows/deploy.yml@refs/heads/main',
        'acme/docs/.github/workflows/Deploy.yml@refs/heads/main',
        'acme/docs/.github/workflows/deploy.yml@refs/heads/feature',
        'evil/docs/.github/workflows/deploy.yml@refs/heads/main',
        ABSENT,
      ),
    });
    fc.assert(
      fc.property(choices, (c) => {
        const text = (v: Pick): string | undefined => (typeof v === 'string' ? v : undefined);
        const repository = text(c.repository);
        const workflow = text(c.job_workflow_ref);
        const environment = text(c.environment);
        const bound =
          repository?.toLowerCase() === 'acme/docs' && c.repository_id === DOCS_REPOSITORY_ID && c.repository_owner_id === ACME_OWNER_ID;
        const prefix = 'acme/docs/'.length;
        const workflowOk =
          workflow !== undefined &&
          workflow.slice(0, prefix).toLowerCase() === 'acme/docs/' &&
          workflow.slice(prefix) === WORKFLOW.slice(prefix);
        const production =
          bound &&
          (c.event_name === 'push' || c.event_name === 'workflow_dispatch') &&
          c.ref === 'refs/heads/main' &&
          environment?.toLowerCase() === 'production' &&
          workflowOk;
        const preview = bound && (c.event_name === 'pull_request_target' || c.event_name === 'workflow_run');

        const d = evaluate(set, 'docs', claimsFrom(c));
        if (production) expect(d).toMatchObject({ granted: true, context: 'production' });
        else if (preview) expect(d).toMatchObject({ granted: true, context: 'preview' });
        else expect(d).toMatchObject({ granted: false, reason: bound ? 'no_rule_matched' : 'repository_mismatch', bound });
      }),
      { numRuns: 3000 },
    );
  });

  describe('the grant decided without explanations (the token endpoint\'s path)', () => {
    /** grantOf against evaluate: the same grant (evaluate's without its trace), or nothing exactly when evaluate denies. */
    const decideBoth = (set: PolicySet, site: string, claims: Record<string, unknown>): boolean => {
      const fast = grantOf(set, site, claims);
      const traced = evaluate(set, site, claims);
      if (!traced.granted) {
        expect(fast).toBeUndefined();
        return false;
      }
      const { trace: _trace, ...grant } = traced;
      expect(fast).toEqual(grant);
      expect(fast!.rule).toBe(traced.rule);
      return true;
    };

    it('grants exactly what the traced evaluation grants, for tokens near the policies\' own', () => {
      const set = policySet({ 'docs.yml': docsSite({ token_audience: 'https://deploy.example/docs' }), 'apps.yml': monorepoOrg() });
      const KEEP = Symbol('keep');
      /** Mostly the claim as the token's own repository sends it; else one of these values, or absent. */
      const field = <T,>(...values: T[]) =>
        fc.oneof({ weight: 4, arbitrary: fc.constant<typeof KEEP>(KEEP) }, { weight: 1, arbitrary: fc.constantFrom<Pick | T>(...values, ABSENT) });
      const overrides = fc.record({
        iss: field('https://token.actions.githubusercontent.com/', 'https://evil.example'),
        repository: field('acme/docs', 'ACME/Docs', 'acme/monorepo', 'Acme/MonoRepo', 'acme/docs-evil', 42),
        repository_id: field(DOCS_REPOSITORY_ID, MONOREPO_ID, '1', Number(DOCS_REPOSITORY_ID)),
        repository_owner_id: field('9', Number(ACME_OWNER_ID)),
        event_name: fc.oneof({ weight: 1, arbitrary: fc.constant<typeof KEEP>(KEEP) }, { weight: 2, arbitrary: fc.oneof(anyEvent, fc.constant<Pick>(ABSENT)) }),
        ref: field('refs/heads/Main', 'refs/heads/feature', '', ['refs/heads/main']),
        environment: field('PRODUCTION', 'staging', '', null as unknown as string),
        job_workflow_ref: field(
          'ACME/docs/.github/workflows/deploy.yml@refs/heads/main',
          'acme/docs/.github/workflows/Deploy.yml@refs/heads/main',
          'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
          'acme/monorepo/.github/workflows/deploy-apps.yml@refs/heads/main',
        ),
      });
      const request = fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom([docsClaims, 'docs'] as const, [monorepoClaims, 'app-web'] as const) },
        { weight: 1, arbitrary: fc.constantFrom([docsClaims, 'app-web'] as const, [monorepoClaims, 'docs'] as const, [docsClaims, 'blog'] as const, [monorepoClaims, 'app-'] as const, [docsClaims, 'DOCS'] as const, [docsClaims, '__proto__'] as const) },
      );
      let grants = 0;
      fc.assert(
        fc.property(request, overrides, ([claimsOf, s], o) => {
          const changes: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(o)) if (v !== KEEP) changes[k] = v === ABSENT ? undefined : v;
          if (decideBoth(set, s, claimsOf(changes))) grants++;
        }),
        { numRuns: 4000 },
      );
      expect(grants).toBeGreaterThan(150); // the property saw grants (about 8% of the runs), not only denials
    });

    it('grants exactly what the traced evaluation grants, whatever the site and the claims (any JSON)', () => {
      const set = policySet({ 'docs.yml': docsSite(), 'apps.yml': monorepoOrg() });
      const claimName = fc.constantFrom('iss', 'repository', 'repository_id', 'repository_owner_id', 'event_name', 'ref', 'environment', 'job_workflow_ref', '__proto__', 'constructor');
      const claims = fc.oneof(
        fc.jsonValue(),
        fc.dictionary(claimName, fc.jsonValue()).map((extra) => ({ ...docsClaims(), ...extra })),
        fc.dictionary(claimName, fc.jsonValue()).map((extra) => ({ ...monorepoClaims(), ...extra })),
        fc.dictionary(fc.string(), fc.jsonValue()),
      );
      const site = fc.oneof(fc.constantFrom('docs', 'app-web', 'app-', '__proto__', 'constructor'), fc.string());
      fc.assert(
        fc.property(site, claims, (s, c) => {
          decideBoth(set, s, c as Record<string, unknown>);
        }),
        { numRuns: 3000 },
      );
    });

    it('grants exactly what the traced evaluation grants for rules that bypassed the loader (production to untrusted events)', () => {
      fc.assert(
        fc.property(handMadeRules(0), anyEvent, fc.boolean(), (specs, event, ownerBound) => {
          const file = handMadeFile(specs, ownerBound);
          decideBoth(createPolicySet([file]), 'docs', docsClaims({ event_name: event }));
        }),
        { numRuns: 2000 },
      );
    });
  });

  it('never lets an untrusted event get production, even from a rule that bypassed the loader', () => {
    fc.assert(
      fc.property(handMadeRules(1), anyEvent, (specs, event) => {
        const d = evaluate(createPolicySet([handMadeFile(specs, false)]), 'docs', docsClaims({ event_name: event }));
        if (!isTrustedEvent(event)) expect(d.granted && d.context === 'production').toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never loads a policy that would give an untrusted event production', () => {
    const pattern = fc.oneof(fc.constantFrom(...TRUSTED_EVENTS, ...UNTRUSTED.filter((e) => e !== ''), '*', '**', 'pu*', 'workflow_*'), fc.stringMatching(/^[a-z_*]{1,12}$/));
    const rule = fc.record({
      context: fc.constantFrom('production', 'preview'),
      event_name: fc.option(fc.oneof(pattern, fc.array(pattern, { minLength: 1, maxLength: 3 })), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 3 }), anyEvent, (rules, event) => {
        const data = docsSite({
          rules: rules.map((r, i) => ({
            name: `r${i}`,
            context: r.context,
            permissions: ['deployments:write'],
            when: r.event_name === undefined ? {} : { event_name: r.event_name },
          })),
        });
        const loaded = checkPolicyTexts([{ file: 'docs.yml', text: toYaml(data) }]);
        if (!loaded.ok) return;
        for (const f of loaded.set.files) {
          for (const r of f.rules.filter((x) => x.context === 'production')) {
            const events = r.when.find((c) => c.claim === 'event_name');
            expect(events?.patterns.every((p) => isTrustedEvent(p))).toBe(true);
          }
        }
        const d = evaluate(loaded.set, 'docs', docsClaims({ event_name: event }));
        if (!isTrustedEvent(event)) expect(d.granted && d.context === 'production').toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
