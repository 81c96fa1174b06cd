import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONDITION_CLAIMS } from '../../exchange-service/oidc/claims.js';
import { policyJsonSchema, policyJsonSchemaText } from '../../exchange-service/policy/json-schema.js';
import { validatePolicyData } from '../../exchange-service/policy/schema.js';
import { docsSite, monorepoOrg } from './fixtures.js';

const COMMITTED = path.join(import.meta.dirname, '../../schema/policy.schema.json');

type Json = Record<string, any>;

describe('the published JSON Schema', () => {
  it('is exactly what the zod schema generates (regenerate it as json-schema.ts explains)', async () => {
    const committed = await readFile(COMMITTED, 'utf8');
    expect(JSON.parse(committed)).toEqual(policyJsonSchema());
    expect(committed).toBe(policyJsonSchemaText());
  });

  it('describes both kinds of file, with strict objects', () => {
    const schema = policyJsonSchema() as Json;
    expect(schema.anyOf).toEqual([{ $ref: '#/$defs/siteFile' }, { $ref: '#/$defs/orgFile' }]);
    for (const def of ['siteFile', 'orgFile', 'rule', 'conditions']) expect(schema.$defs[def].additionalProperties).toBe(false);
    expect(schema.$defs.siteFile.required).toEqual(['site', 'repository', 'repository_id', 'rules']);
    expect(schema.$defs.orgFile.required).toEqual(['org', 'sites', 'repository', 'repository_id', 'rules']);
  });

  it('lists the condition claims and allows repo_property_<name> only by pattern', () => {
    const conditions = (policyJsonSchema() as Json).$defs.conditions;
    expect(Object.keys(conditions.properties)).toEqual([...CONDITION_CLAIMS]);
    expect(Object.keys(conditions.patternProperties)).toEqual(['^repo_property_[A-Za-z0-9_$#-]{1,75}$']);
  });

  it('offers the permission vocabulary and the max_ttl default for autocompletion', () => {
    const rule = (policyJsonSchema() as Json).$defs.rule;
    expect(rule.properties.permissions.items.enum).toContain('deployments:write');
    expect(rule.properties.max_ttl.default).toBe('10m');
  });
});

describe('validatePolicyData', () => {
  it('accepts the spec example site file and an org file', () => {
    expect(validatePolicyData(docsSite())).toMatchObject({ success: true, data: { kind: 'site', site: 'docs' } });
    expect(validatePolicyData(monorepoOrg())).toMatchObject({ success: true, data: { kind: 'org', org: 'acme', sites: ['app-*'] } });
  });

  it('refuses an org file without org or with an empty sites list', () => {
    const result = validatePolicyData(monorepoOrg({ org: undefined, sites: [] }));
    expect(result.success).toBe(false);
    if (!result.success) {
      expect(result.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
        ['org', 'org must be a GitHub organisation login, e.g. acme, got nothing'],
        ['sites', 'sites must list at least one slug or glob'],
      ]);
    }
  });

  it('refuses sites entries that are neither slugs nor globs over slugs', () => {
    const result = validatePolicyData(monorepoOrg({ sites: ['App', 'app/*', '-x'] }));
    expect(result.success).toBe(false);
    if (!result.success) expect(result.issues.map((i) => i.path.join('.'))).toEqual(['sites.0', 'sites.1', 'sites.2']);
  });

  it('refuses a ** in the owner/repo part of a workflow ref pattern', () => {
    const result = validatePolicyData(docsSite({ rules: [{ name: 'p', context: 'preview', permissions: ['sites:read'], when: { workflow_ref: '**/deploy.yml@refs/heads/main' } }] }));
    expect(result.success).toBe(false);
    if (!result.success) expect(result.issues[0]!.message).toContain('the owner/repo part of a workflow_ref pattern may use * but not **');
  });
});
