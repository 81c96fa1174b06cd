/**
 * SARIF 2.1.0 output, the format GitHub code scanning ingests (github/codeql-action/upload-sarif): one run, every
 * rule described once (what, why, fix, a link to its documentation), every finding a result at file:line:column.
 * Relative paths stay relative (code scanning resolves them against the checkout); absolute ones become file: URIs.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { WORKFLOW_RULES } from './rules/index.js';
import { POLICY_RULES } from './rules/policy-rules.js';
import { workflowSyntax } from './rules/workflow-syntax.js';
import type { Finding, RuleMeta } from './types.js';

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';
export const RULES_DOC = 'https://github.com/deploy-sts/deploy-sts/blob/main/docs/workflows-check.md';

/** Every rule the command can report, in id order. */
export const ALL_RULES: readonly RuleMeta[] = [workflowSyntax, ...WORKFLOW_RULES, ...POLICY_RULES];

export function artifactUri(file: string): string {
  if (path.isAbsolute(file)) return pathToFileURL(file).href;
  return file.split(path.sep).join('/').split('/').map(encodeURIComponent).join('/');
}

/**
 * A plain-text SARIF message in which `[text](target)` is an embedded link (SARIF 2.1.0 §3.11.6): a message quotes the
 * workflow's own text, which must not become a link in code scanning, so `](` is written `\](`.
 */
export function sarifText(message: string): string {
  return message.replace(/\]\(/g, '\\](');
}

export function toSarif(findings: readonly Finding[], options: { version?: string } = {}): object {
  const index = new Map(ALL_RULES.map((r, i) => [r.id, i]));
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'deploy-sts workflows check',
            ...(options.version ? { semanticVersion: options.version } : {}),
            informationUri: RULES_DOC,
            rules: ALL_RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.summary },
              fullDescription: { text: `${r.summary} ${r.why}` },
              help: { text: `${r.why} Fix: ${r.fix}`, markdown: `${r.why}\n\n**Fix:** ${r.fix}` },
              helpUri: `${RULES_DOC}#${r.id.toLowerCase()}-${r.name}`,
              defaultConfiguration: { level: r.severity },
              properties: { tags: ['security', 'github-actions'], precision: 'high', 'security-severity': r.severity === 'error' ? '8.0' : '5.0' },
            })),
          },
        },
        columnKind: 'utf16CodeUnits',
        results: findings.map((f) => ({
          ruleId: f.rule,
          ...(index.has(f.rule) ? { ruleIndex: index.get(f.rule)! } : {}),
          level: f.severity,
          message: { text: sarifText(f.message) },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: artifactUri(f.file) },
                region: { startLine: Math.max(1, f.line), startColumn: Math.max(1, f.column) },
              },
            },
          ],
        })),
      },
    ],
  };
}
