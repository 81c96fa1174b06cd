/**
 * The docs follow their own advice: every workflow in README.md and docs/*.md passes `deploy-sts workflows check`
 * with zero findings — except the examples marked `<!-- bad-example: RULE -->`, which must produce that rule and
 * only that one. The README's workflows also agree with the README's policy (the quick-start site file plus the
 * fork-preview rule) in the policy cross-check.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPolicyTexts } from '../../exchange-service/policy/load.js';
import { checkWorkflowTexts } from '../../exchange-service/workflows/check.js';
import { crossCheckPolicies } from '../../exchange-service/workflows/policy-check.js';
import { ROOT } from '../helpers/service.js';

interface Block {
  doc: string;
  line: number;
  text: string;
  /** `<!-- bad-example: RULE -->` before the block. */
  bad?: string;
}

function yamlBlocks(doc: string): Block[] {
  const markdown = readFileSync(join(ROOT, doc), 'utf8');
  return [...markdown.matchAll(/(?:<!-- bad-example: ([\w-]+) -->\s*\n)?( *)```yaml\n([\s\S]*?)\n *```/g)].map((m) => {
    const indent = m[2]!.length; // blocks inside a list item are indented
    const text = m[3]!.replace(new RegExp(`^ {0,${indent}}`, 'gm'), '');
    return { doc, line: markdown.slice(0, m.index).split('\n').length, text: `${text}\n`, ...(m[1] ? { bad: m[1] } : {}) };
  });
}

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)];
const blocks = DOCS.flatMap(yamlBlocks);
const workflows = blocks.filter((b) => /^jobs:/m.test(b.text));

const check = (b: Block) => checkWorkflowTexts([{ file: `${b.doc}:${b.line}`, name: 'workflow.yml', text: b.text }]).findings;

describe('the workflows in the docs', () => {
  it('are there: the README\'s (the Action\'s four, the gateway\'s two), the CI workflow and the rules\' examples in docs/workflows-check.md', () => {
    expect(workflows.filter((w) => w.doc === 'README.md')).toHaveLength(6);
    expect(workflows.filter((w) => w.doc === 'docs/workflows-check.md' && !w.bad).length).toBeGreaterThanOrEqual(5);
    expect(new Set(workflows.flatMap((w) => w.bad ?? []))).toEqual(new Set(['DSTS101', 'DSTS102', 'DSTS103', 'DSTS104', 'DSTS105', 'DSTS201', 'DSTS202', 'DSTS203', 'DSTS204', 'DSTS205']));
  });

  for (const b of workflows) {
    if (b.bad) {
      it(`${b.doc}:${b.line} (bad example) produces ${b.bad} and nothing else`, () => {
        const findings = check(b);
        expect(findings.length).toBeGreaterThan(0);
        expect([...new Set(findings.map((f) => f.rule))]).toEqual([b.bad]);
      });
    } else {
      it(`${b.doc}:${b.line} passes with zero findings`, () => {
        expect(check(b).map((f) => `${f.file}:${f.line}:${f.column} ${f.rule} ${f.message}`)).toEqual([]);
      });
    }
  }
});

describe('the README\'s workflows and policy', () => {
  it('agree: the policy\'s pins name the Action section\'s workflows, which run on the rules\' events and pass every rule', () => {
    const readme = yamlBlocks('README.md');
    const named = readme
      .filter((b) => /^jobs:/m.test(b.text))
      .map((b) => {
        const name = /^# \.github\/workflows\/([\w.-]+\.yml)/.exec(b.text)?.[1];
        expect(name, `README.md:${b.line} names its file in a first-line comment`).toBeDefined();
        return { file: `.github/workflows/${name}`, name: name!, text: b.text };
      });
    // The Action's quick start and fork previews (the deploy gateway's section shows other versions of two of them).
    const markdown = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
    const from = markdown.indexOf('## The GitHub Action') + 1;
    const to = markdown.indexOf('## When the Action fails') + 1;
    const files = named.filter((f) => {
      const line = readme.find((b) => b.text === f.text)!.line;
      return line > from && line < to;
    });
    expect(files.map((f) => f.name).sort()).toEqual(['deploy.yml', 'preview-build.yml', 'preview-deploy.yml', 'preview.yml']);
    const checked = checkWorkflowTexts(files);
    expect(checked.findings).toEqual([]);

    // The quick start's site file, with the fork-preview rule added "next to the production one".
    const site = readme.find((b) => b.text.startsWith('site: docs\nrepository: acme/docs\n') && !b.text.includes('upstream:'))!;
    const previews = readme.find((b) => b.text.startsWith('# policy: add a preview rule'))!;
    const policy = `${site.text}${previews.text}`;
    const loaded = checkPolicyTexts([{ file: 'docs.yml', text: policy }]);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    expect(loaded.set.files[0]!.rules.map((r) => r.name)).toEqual(['production', 'previews']);
    const findings = crossCheckPolicies({
      policies: loaded.set.files,
      texts: new Map([['docs.yml', { display: 'docs.yml', text: policy }]]),
      repository: 'acme/docs',
      workflows: checked.workflows,
      findings: checked.findings,
    });
    expect(findings).toEqual([]);
  });
});
