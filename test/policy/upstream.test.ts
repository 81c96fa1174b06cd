/**
 * `upstream.netlify` in a site file: the Netlify site a slug deploys to and the stored credential used for it.
 * Bad values are load errors at file:line:column; a token for such a site is for the gateway alone.
 */
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { evaluate } from '../../exchange-service/policy/match.js';
import { docsClaims, docsSite, monorepoOrg, policySet, toYaml } from './fixtures.js';

const SITE_ID = '3970e0fe-8564-4903-9a55-c5f8de49fb8b';
const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;
const HEAD = ['site: docs', 'repository: acme/docs', 'repository_id: "892043217"'];
const RULES = ['rules:', '  - name: previews', '    context: preview', '    permissions: [deployments:write]', '    when: { event_name: pull_request_target }'];

function problems(text: string): string[] {
  const result = checkPolicyTexts([{ file: 'docs.yml', text }]);
  if (result.ok) throw new Error('expected problems');
  return result.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);
}

describe('upstream.netlify', () => {
  it('loads the site id, the credential name and functions_in_previews (default false)', () => {
    const set = policySet({ 'docs.yml': docsSite({ upstream: { netlify: { site_id: SITE_ID.toUpperCase(), credential: 'netlify-acme' } } }) });
    expect(set.forSite('docs')[0]!.upstream).toEqual({ netlify: { siteId: SITE_ID, credential: 'netlify-acme', functionsInPreviews: false } });
    const withFunctions = policySet({ 'docs.yml': docsSite({ upstream: { netlify: { site_id: SITE_ID, credential: 'netlify-acme', functions_in_previews: true } } }) });
    expect(withFunctions.forSite('docs')[0]!.upstream?.netlify?.functionsInPreviews).toBe(true);
  });

  it('is a load error together with token_audience, pointing at token_audience', () => {
    const text = yaml(...HEAD, 'token_audience: https://deploy.example.com', 'upstream:', '  netlify:', `    site_id: ${SITE_ID}`, '    credential: netlify-acme', ...RULES);
    expect(problems(text)).toEqual([
      'docs.yml:4:1: token_audience cannot be combined with upstream.netlify: tokens for a site deployed through the Netlify gateway carry the audience <public URL>/gateway/netlify. Fix: remove token_audience',
    ]);
  });

  it('says what is wrong with a site id, a credential name, or an unknown key, where it is', () => {
    const text = yaml(...HEAD, 'upstream:', '  netlify:', '    site_id: acme-docs', '    credential: Netlify Acme', '    draft: false', '  vercel: {}', ...RULES);
    expect(problems(text)).toEqual([
      'docs.yml:6:14: upstream.netlify: site_id must be the Netlify site id, a UUID such as 3970e0fe-8564-4903-9a55-c5f8de49fb8b (not the site name)',
      expect.stringMatching(/^docs\.yml:7:17: upstream\.netlify: credential must be a name: lower-case letters/),
      'docs.yml:8:5: upstream.netlify: unknown key "draft": upstream.netlify allows only site_id, credential, functions_in_previews',
      'docs.yml:9:3: upstream: unknown key "vercel": upstream allows only netlify',
    ]);
  });

  it('requires both site_id and credential', () => {
    const text = yaml(...HEAD, 'upstream:', '  netlify: {}', ...RULES);
    const found = problems(text).join('\n');
    expect(found).toMatch(/site_id is required: the Netlify site id/);
    expect(found).toMatch(/credential is required: the name of a credential in the store \(deploy-sts credentials set NAME\)/);
  });

  it('is not allowed in an org file', () => {
    const result = checkPolicyTexts([{ file: 'org.yml', text: toYaml(monorepoOrg({ upstream: { netlify: { site_id: SITE_ID, credential: 'netlify-acme' } } })) }]);
    expect(result.ok).toBe(false);
  });
});

describe('the decision for a gateway site', () => {
  it('carries the site file\'s upstream, so the token is minted for the gateway', () => {
    const set = policySet({ 'docs.yml': docsSite({ upstream: { netlify: { site_id: SITE_ID, credential: 'netlify-acme' } } }) });
    const decision = evaluate(set, 'docs', docsClaims());
    expect(decision.granted).toBe(true);
    expect(decision.granted && decision.upstream?.netlify?.siteId).toBe(SITE_ID);
  });
});
