/**
 * SARIF 2.1.0 output, validated against the OASIS schema (test/workflows/fixtures/sarif-schema-2.1.0.json, from
 * oasis-tcs/sarif-spec, a JSON Schema draft-04 document) with Ajv.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvDraft04 from 'ajv-draft-04';
import { describe, expect, it } from 'vitest';
import { ALL_RULES, artifactUri, toSarif } from '../../exchange-service/workflows/sarif.js';
import { checkCorpus } from './helpers.js';

const schema = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'sarif-schema-2.1.0.json'), 'utf8')) as object;

function validator() {
  const Ajv = (AjvDraft04 as unknown as { default?: typeof AjvDraft04 }).default ?? AjvDraft04;
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The formats the schema uses, checked rather than ignored.
  ajv.addFormat('uri', (value: string) => URL.canParse(value));
  ajv.addFormat('uri-reference', (value: string) => URL.canParse(value, 'file:///base/') && !/\s/.test(value));
  ajv.addFormat('date-time', (value: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value));
  return ajv.compile(schema);
}

interface SarifLog {
  version: string;
  runs: {
    tool: { driver: { rules: { id: string; name: string; defaultConfiguration: { level: string } }[] } };
    results: { ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } } }[] }[];
  }[];
}

describe('SARIF output', () => {
  const validate = validator();
  const { findings } = checkCorpus();
  const log = toSarif(findings, { version: '0.1.0' }) as SarifLog;

  it('is valid SARIF 2.1.0', () => {
    const ok = validate(log);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the validator rejects what is not SARIF (the schema is really applied)', () => {
    expect(validate({ version: '2.1.0', runs: [{ tool: {} }] })).toBe(false);
    expect(validate({ ...log, version: '2.0.0' })).toBe(false);
    const badLevel = structuredClone(log);
    badLevel.runs[0]!.results[0]!.level = 'fatal';
    expect(validate(badLevel)).toBe(false);
  });

  it('is valid with no findings too', () => {
    expect(validate(toSarif([]))).toBe(true);
  });

  it('has one result per finding, at its file:line:column, with its rule and level', () => {
    const results = log.runs[0]!.results;
    expect(results).toHaveLength(findings.length);
    results.forEach((r, i) => {
      const f = findings[i]!;
      expect(r.ruleId).toBe(f.rule);
      expect(log.runs[0]!.tool.driver.rules[r.ruleIndex]!.id).toBe(f.rule);
      expect(r.level).toBe(f.severity);
      expect(r.message.text).toBe(f.message);
      expect(r.locations[0]!.physicalLocation.artifactLocation.uri).toBe(f.file);
      expect(r.locations[0]!.physicalLocation.region).toEqual({ startLine: f.line, startColumn: f.column });
    });
  });

  it('describes every rule once, with its severity', () => {
    const rules = log.runs[0]!.tool.driver.rules;
    expect(rules.map((r) => r.id)).toEqual(ALL_RULES.map((r) => r.id));
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
    for (const r of rules) expect(r.defaultConfiguration.level).toBe(ALL_RULES.find((x) => x.id === r.id)!.severity);
  });

  it('keeps relative paths relative (code scanning resolves them against the checkout) and encodes them', () => {
    expect(artifactUri('.github/workflows/deploy.yml')).toBe('.github/workflows/deploy.yml');
    expect(artifactUri('.github/workflows/my deploy.yml')).toBe('.github/workflows/my%20deploy.yml');
    expect(artifactUri('/repo/.github/workflows/deploy.yml')).toBe('file:///repo/.github/workflows/deploy.yml');
  });
});
