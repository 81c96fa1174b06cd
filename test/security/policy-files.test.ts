/**
 * The policy files themselves as attack surface: keys that name JavaScript object internals, and files read while
 * they are being written. Neither may crash the loader, widen access, or load half a file.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { formatPolicyProblem } from '../../exchange-service/policy/types.js';
import { exchangeToken } from '../helpers/service.js';
import { docsSite, productionRule, toYaml } from '../policy/fixtures.js';
import { expectGranted, expectRefused, policyDir, startSuite, type Suite } from './support.js';

function problems(text: string): string[] {
  const result = checkPolicyTexts([{ file: 'docs.yml', text }]);
  return result.ok ? ['loaded'] : result.problems.map(formatPolicyProblem);
}

const HEAD = 'site: docs\nrepository: acme/docs\nrepository_id: "892043217"\nrules:\n  - name: previews\n    context: preview\n    permissions: [deployments:write]\n';

describe('keys naming object internals (__proto__, constructor, prototype)', () => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses ${key} as a when key, at file:line:column, without crashing`, () => {
      const text = `${HEAD}    when:\n      ${key}: { event_name: push }\n`;
      expect(problems(text)).toEqual([
        `docs.yml:9:7: key "${key}" is not allowed in a policy file: __proto__, constructor and prototype name JavaScript object internals and are refused everywhere. Fix: remove it`,
      ]);
    });
  }

  it('refuses them at the top level, inside rules and inside lists, quoted or not', () => {
    const text = `"__proto__": {}\n${HEAD}    when:\n      event_name: [{ constructor: 1 }]\n    'prototype': x\n`;
    expect(problems(text).filter((p) => /object internals/.test(p)).map((p) => p.split(': key')[0])).toEqual(['docs.yml:1:1', 'docs.yml:10:22', 'docs.yml:11:5']);
  });

  it('refuses them as keys of an org file too', () => {
    const text = 'org: acme\nsites: [app-*]\n__proto__: { sites: ["*"] }\nrepository: acme/mono\nrepository_id: "1"\nrules: []\n';
    expect(problems(text)).toContain('docs.yml:3:1: key "__proto__" is not allowed in a policy file: __proto__, constructor and prototype name JavaScript object internals and are refused everywhere. Fix: remove it');
  });
});

describe('a policy file read while it is being written', () => {
  // The complete file, and the same file cut off in the middle of its production rule's conditions: still valid
  // YAML, still a valid policy, and wider (no environment or workflow pin).
  const complete = toYaml(docsSite({ rules: [productionRule()] }));
  const truncated = complete.slice(0, complete.indexOf('\n', complete.indexOf('ref: refs/heads/main')) + 1);
  let suite: Suite;
  let dir: string;
  beforeAll(async () => {
    expect(truncated).not.toContain('environment:');
    expect(checkPolicyTexts([{ file: 'docs.yml', text: truncated }]).ok).toBe(true);
    dir = policyDir({ 'docs.yml': complete });
    suite = await startSuite({ policies: dir });
  });
  afterAll(async () => {
    await suite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is never swapped in: a reload waits until the directory reads the same twice', async () => {
    writeFileSync(join(dir, 'docs.yml'), truncated);
    const reload = suite.svc.service.reloadPolicies();
    await sleep(60);
    writeFileSync(join(dir, 'docs.yml'), complete);
    expect(await reload).toMatchObject({ ok: true });
    // A staging job with an unpinned workflow: only the truncated file would grant it production.
    const staging = { environment: 'staging', job_workflow_ref: 'acme/docs/.github/workflows/other.yml@refs/heads/main' };
    await expectRefused(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token(staging)), { status: 400, error: 'invalid_target', reason: 'no_rule_matched' });
    await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token()));
  });
});
