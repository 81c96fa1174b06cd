/** Conditions that can never match a GitHub token: `policy check` warns, loading still succeeds. */
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { GITHUB_EVENTS, neverMatching } from '../../exchange-service/policy/never-match.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { docsClaims, docsSite, policySet, previewRule, productionRule, toYaml } from './fixtures.js';

const messages = (when: Record<string, string[]>) => neverMatching(when).map((w) => w.message);

describe('a ref', () => {
  it('that is not a full ref name never matches, and the warning says what GitHub sends', () => {
    expect(messages({ ref: ['main'] })).toEqual([
      'ref "main" never matches: GitHub sends full ref names (refs/heads/main, refs/tags/v1.2.3, refs/pull/42/merge); did you mean "refs/heads/main"?',
    ]);
    expect(messages({ ref: ['tags/v*'] })[0]).toContain('did you mean "refs/tags/v*"?');
  });

  it('starting with refs/, or with a wildcard that can cover it, is fine', () => {
    expect(messages({ ref: ['refs/heads/main', 'refs/tags/*', '**', '*/heads/main', 'ref*'] })).toEqual([]);
  });

  it('really is never matched by a GitHub-shaped token', () => {
    const set = policySet({ 'docs.yml': docsSite({ rules: [productionRule({ when: { event_name: ['push'], ref: 'main' } })] }) });
    expect(evaluate(set, 'docs', docsClaims({ ref: 'refs/heads/main' })).granted).toBe(false);
  });
});

describe('a job_workflow_ref or workflow_ref', () => {
  it('without @ never matches', () => {
    for (const claim of ['job_workflow_ref', 'workflow_ref']) {
      const [message] = messages({ [claim]: ['acme/docs/.github/workflows/deploy.yml'] });
      expect(message).toContain(`${claim} "acme/docs/.github/workflows/deploy.yml" never matches: GitHub sends owner/repo/path@ref`);
      expect(message).toContain('"acme/docs/.github/workflows/deploy.yml@refs/heads/main"');
    }
  });

  it('with @, or with ** that can cover it, is fine', () => {
    expect(messages({ job_workflow_ref: ['acme/docs/.github/workflows/deploy.yml@refs/heads/main', 'acme/docs/**'] })).toEqual([]);
  });
});

describe('an event_name', () => {
  it('GitHub never sends gets a warning with the closest real event', () => {
    expect(messages({ event_name: ['pul_request_target'] })).toEqual([
      'event_name "pul_request_target" is not an event GitHub sends (did you mean "pull_request_target"?); see "Events that trigger workflows" in GitHub\'s documentation',
    ]);
    expect(messages({ event_name: ['deploy'] })[0]).toBe('event_name "deploy" is not an event GitHub sends; see "Events that trigger workflows" in GitHub\'s documentation');
  });

  it('workflow_call and pull_request_comment are explained: a token never carries them', () => {
    expect(messages({ event_name: ['workflow_call'] })[0]).toContain('carries the event of the workflow that called it');
    expect(messages({ event_name: ['pull_request_comment'] })[0]).toContain('issue_comment');
  });

  it('every event GitHub documents is accepted', () => {
    expect(messages({ event_name: [...GITHUB_EVENTS] })).toEqual([]);
  });
});

describe('an environment', () => {
  it('with surrounding spaces never matches', () => {
    expect(messages({ environment: [' production '] })).toEqual([
      'environment " production " never matches: GitHub environment names have no leading or trailing spaces; write "production"',
    ]);
    expect(messages({ environment: ['production', 'staging *'] })).toEqual([]);
  });
});

describe('loading policies with such conditions', () => {
  it('succeeds, with each warning at its file:line:column', () => {
    const text = toYaml(
      docsSite({
        rules: [previewRule({ when: { event_name: ['pull_request_target', 'workflow_runn'], ref: 'main', environment: ' preview' } })],
      }),
    );
    const result = checkPolicyTexts([{ file: 'docs.yml', text }]);
    expect(result.ok).toBe(true);
    const lines = text.split('\n');
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    expect(result.warnings.map((w) => [w.line, /^rules\[0\] \("previews"\): (\w+) /.exec(w.message)?.[1]])).toEqual([
      [at('workflow_runn'), 'event_name'],
      [at('ref: main'), 'ref'],
      [at('environment:'), 'environment'],
    ]);
  });

  it('gives no warning for the example policies', () => {
    const result = checkPolicyTexts([{ file: 'docs.yml', text: toYaml(docsSite()) }]);
    expect(result.warnings).toEqual([]);
  });
});
