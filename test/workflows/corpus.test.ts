/**
 * The workflow corpus (test/workflows/corpus/): every rule hit and not hit, each finding asserted by rule and by
 * the exact position — and by the text found there, so a position that drifts by one fails.
 */
import { describe, expect, it } from 'vitest';
import { checkWorkflowTexts } from '../../exchange-service/workflows/check.js';
import { WORKFLOW_RULES } from '../../exchange-service/workflows/rules/index.js';
import { CORPUS, checkCorpus, readWorkflowFiles, textAt } from './helpers.js';

/** [file, rule, line, column, the text that starts at that position]. */
const EXPECTED: [string, string, number, number, string][] = [
  ['anchors.yml', 'DSTS103', 18, 11, 'yarn --frozen-lockfile'],
  ['anchors.yml', 'DSTS103', 31, 14, 'pip install'],
  ['artifact-run.yml', 'DSTS204', 9, 3, 'deploy:'],
  ['artifact-run.yml', 'DSTS102', 24, 11, 'source site/env.sh'],
  ['artifact-run.yml', 'DSTS102', 25, 11, 'cat site/vars >> "$GITHUB_ENV"'],
  ['artifact-run.yml', 'DSTS102', 29, 14, 'bash ./deploy.sh'],
  ['artifact-run.yml', 'DSTS102', 30, 15, './site/action'],
  ['cache.yml', 'DSTS105', 12, 15, 'actions/cache@'],
  ['cache.yml', 'DSTS105', 22, 18, 'npm'],
  ['cache.yml', 'DSTS105', 26, 15, 'actions/setup-go@'],
  ['called-deploy.yml', 'DSTS103', 8, 14, './gradlew assemble'],
  ['caller.yml', 'DSTS001', 21, 11, './.github/workflows/not-there.yml'],
  ['injection.yml', 'DSTS104', 24, 24, '${{ github.event.pull_request.title }}'],
  ['injection.yml', 'DSTS104', 26, 23, '${{github.event.comment.body}}'],
  ['injection.yml', 'DSTS104', 27, 20, '${{ env.WF_TITLE }}'],
  ['injection.yml', 'DSTS104', 27, 43, '${{ matrix.branch }}'],
  ['injection.yml', 'DSTS104', 33, 20, '${{ env.HEAD }}'],
  ['injection.yml', 'DSTS104', 37, 26, '${{ github.event.pull_request.head.ref }}'],
  ['local-action.yml', 'DSTS103', 10, 14, 'npm install'],
  ['no-permissions.yml', 'DSTS203', 3, 1, 'on:'],
  ['no-permissions.yml', 'DSTS202', 10, 15, 'actions/checkout@'],
  ['not-a-workflow.yml', 'DSTS001', 2, 1, 'name: not-a-workflow'],
  ['pr-checkout-command.yml', 'DSTS101', 16, 15, './.github/actions/deploy'],
  ['pwn-request.yml', 'DSTS205', 6, 3, 'preview:'],
  ['pwn-request.yml', 'DSTS202', 12, 15, 'actions/checkout@'],
  ['pwn-request.yml', 'DSTS101', 16, 14, '|'],
  ['pwn-request.yml', 'DSTS103', 18, 11, 'npm ci'],
  ['pwn-request.yml', 'DSTS103', 19, 11, 'npm run build'],
  ['syntax-error.yml', 'DSTS001', 8, 1, '    -'],
  ['syntax-error.yml', 'DSTS001', 8, 5, '- oops'],
  ['syntax-error.yml', 'DSTS001', 9, 1, ''],
  ['unpinned.yml', 'DSTS201', 12, 15, 'actions/download-artifact@v4'],
  ['unpinned.yml', 'DSTS201', 13, 15, 'deploy-sts/deploy-sts@main'],
  ['unpinned.yml', 'DSTS201', 17, 15, 'docker://alpine:3.20'],
  ['unpinned.yml', 'DSTS201', 19, 15, 'deploy-sts/deploy-sts@0123456789ABCDEF'],
  ['unpinned.yml', 'DSTS201', 26, 11, 'acme/workflows/.github/workflows/deploy.yml@v2'],
  ['workflow-run-checkout.yml', 'DSTS101', 24, 14, './scripts/deploy.sh'],
  ['workflow-run-unfiltered.yml', 'DSTS204', 4, 3, 'workflow_run:'],
  ['workflow-run-unfiltered.yml', 'DSTS204', 20, 3, 'other:'],
  ['write-all.yml', 'DSTS203', 6, 14, 'write-all'],
  ['write-all.yml', 'DSTS103', 14, 19, 'make install'],
  ['write-all.yml', 'DSTS203', 17, 18, 'write-all'],
];

const GOOD = ['called-safe.yml', 'gated.yml', 'good-deploy.yml', 'unrelated-ci.yml'];

describe('the workflow corpus', () => {
  const result = checkCorpus();
  const found = result.findings.map((f) => [f.file.replace(/^corpus\//, ''), f.rule, f.line, f.column] as const);

  it('reads every file', () => {
    expect(result.files).toBe(readWorkflowFiles(CORPUS).length);
  });

  it('reports exactly the expected findings, at the expected positions', () => {
    expect(found).toEqual(EXPECTED.map(([file, rule, line, column]) => [file, rule, line, column]));
  });

  it('points every finding at the offending text', () => {
    for (const [file, , line, column, text] of EXPECTED) {
      expect(textAt(CORPUS, file, line, column, text.length), `${file}:${line}:${column}`).toBe(text);
    }
  });

  it('hits every workflow rule at least once', () => {
    const hit = new Set(result.findings.map((f) => f.rule));
    for (const rule of WORKFLOW_RULES) expect(hit.has(rule.id), rule.id).toBe(true);
  });

  it('finds nothing in the good workflows (each rule not hit there)', () => {
    for (const file of GOOD) expect(found.filter((f) => f[0] === file), file).toEqual([]);
  });

  it('says in every message what is wrong, why, and the fix', () => {
    for (const f of result.findings) {
      const rule = WORKFLOW_RULES.find((r) => r.id === f.rule);
      expect(f.message).toMatch(/\. .+ Fix: .+/);
      if (rule) expect(f.message).toContain(rule.why);
      expect(f.severity).toBe(rule?.severity ?? 'error');
    }
  });
});

describe('YAML anchors and aliases', () => {
  it('reports a script reached through an alias where it is written, naming the alias', () => {
    const f = checkCorpus().findings.find((x) => x.file === 'corpus/anchors.yml' && x.line === 18)!;
    expect(f.message).toContain('job "deploy"');
    expect(f.message).toContain('reached through the alias at 26:14');
  });

  it('applies permissions reached through an alias', () => {
    const f = checkCorpus().findings.find((x) => x.file === 'corpus/anchors.yml' && x.line === 31)!;
    expect(f.message).toContain('job "deploy-again" holds id-token: write');
  });
});

describe('reusable workflows', () => {
  it('checks a called workflow with the permissions of the job that calls it', () => {
    const f = checkCorpus().findings.find((x) => x.file === 'corpus/called-deploy.yml')!;
    expect(f.message).toContain('called from job "deploy" of corpus/caller.yml');
    expect(f.message).toContain('inherited from job "deploy" of corpus/caller.yml');
  });

  it('finds nothing in a called workflow when no caller gives it id-token', () => {
    const files = readWorkflowFiles(CORPUS).filter((f) => f.name === 'called-deploy.yml');
    expect(checkWorkflowTexts(files).findings).toEqual([]);
  });
});

describe('the deploy-sts Action through a local path', () => {
  const files = readWorkflowFiles(CORPUS).filter((f) => f.name === 'local-action.yml');

  it('makes the job privileged when ./ is the deploy-sts Action', () => {
    const { findings } = checkWorkflowTexts(files, { localActionNames: new Map([['', 'deploy-sts']]) });
    expect(findings.map((f) => f.rule)).toEqual(['DSTS103']);
    expect(findings[0]!.message).toContain('uses the deploy-sts Action');
  });

  it('does not when ./ is another action', () => {
    expect(checkWorkflowTexts(files, { localActionNames: new Map([['', 'something-else']]) }).findings).toEqual([]);
  });
});

describe('multi-line run: blocks', () => {
  it('points at the line inside the block, not at run:', () => {
    const text = ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions:', '      id-token: write', '    steps:', '      - run: |', '          set -e', '', '          # npm ci in a comment is ignored', '          echo ok && npm ci', ''].join('\n');
    const { findings } = checkWorkflowTexts([{ file: 'w.yml', name: 'w.yml', text }]);
    expect(findings.map((f) => [f.rule, f.line, f.column])).toEqual([['DSTS103', 12, 22]]);
  });

  it('points into a folded block and a quoted scalar too', () => {
    const text = ['on: pull_request_target', 'permissions: {}', 'jobs:', '  d:', '    environment: preview', '    permissions:', '      id-token: write', '    steps:', '      - run: >-', '          echo', '          "${{ github.head_ref }}"', '      - run: "echo ${{ github.event.issue.title }}"', ''].join('\n');
    const { findings } = checkWorkflowTexts([{ file: 'w.yml', name: 'w.yml', text }]);
    expect(findings.map((f) => [f.rule, f.line, f.column])).toEqual([
      ['DSTS104', 11, 12],
      ['DSTS104', 12, 20],
    ]);
  });
});

describe('hostile input', () => {
  it('does not expand a "billion laughs" of aliases in a matrix', () => {
    const levels = ['        l0: &l0 ["${{ github.head_ref }}", x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`        l${i}: &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(', ')}]`);
    const text = ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions:', '      id-token: write', '    strategy:', '      matrix:', ...levels, '    steps:', '      - run: echo ${{ matrix.l8 }}', ''].join('\n');
    const { findings } = checkWorkflowTexts([{ file: 'w.yml', name: 'w.yml', text }]);
    expect(findings.map((f) => [f.rule, f.line])).toEqual([['DSTS104', 19]]);
  });
});

describe('accepting a finding on purpose', () => {
  const workflow = (steps: string[]) => ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions:', '      id-token: write', '    steps:', ...steps, ''].join('\n');
  const rules = (text: string) => checkWorkflowTexts([{ file: 'w.yml', name: 'w.yml', text }]).findings.map((f) => [f.rule, f.line]);

  it('drops a rule\'s finding with `deploy-sts: ignore[ID] reason` on its line or alone on the line above', () => {
    expect(rules(workflow(['      - run: npx tool deploy # deploy-sts: ignore[DSTS103] the pinned deploy tool']))).toEqual([]);
    expect(rules(workflow(['      # deploy-sts: ignore[DSTS103] the pinned deploy tool', '      - run: npx tool deploy']))).toEqual([]);
    expect(rules(workflow(['      - run: |', '          echo ok', '          npx tool deploy  # deploy-sts: ignore[DSTS201, DSTS103] the pinned deploy tool']))).toEqual([]);
  });

  it('keeps it without a reason, for another rule, or further away', () => {
    expect(rules(workflow(['      - run: npx tool deploy # deploy-sts: ignore[DSTS103]']))).toEqual([['DSTS103', 8]]);
    expect(rules(workflow(['      - run: npx tool deploy # deploy-sts: ignore[DSTS104] wrong rule']))).toEqual([['DSTS103', 8]]);
    expect(rules(workflow(['      # deploy-sts: ignore[DSTS103] too far away', '      - name: deploy', '        run: npx tool deploy']))).toEqual([['DSTS103', 10]]);
  });
});
