/** Shared by the workflow-check suites: the corpus on disk, and how to run the checker over it. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkWorkflowTexts, type CheckResult, type WorkflowFile } from '../../exchange-service/workflows/check.js';
import { ROOT } from '../helpers/service.js';

export const CORPUS = join(ROOT, 'test', 'workflows', 'corpus');
export const POLICY_CORPUS = join(ROOT, 'test', 'workflows', 'policy-corpus');

/** The workflow files of a directory, named `corpus/<file>` (or with `prefix`). */
export function readWorkflowFiles(dir: string, prefix = 'corpus/'): WorkflowFile[] {
  return readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((name) => ({ file: `${prefix}${name}`, name, text: readFileSync(join(dir, name), 'utf8') }));
}

/** The corpus checked as this repository would: `uses: ./` is the deploy-sts Action (its action.yml says so). */
export function checkCorpus(): CheckResult {
  return checkWorkflowTexts(readWorkflowFiles(CORPUS), { localActionNames: new Map([['', 'deploy-sts']]) });
}

/** The text at line:column of a corpus file (for asserting that a position points at what it should). */
export function textAt(dir: string, name: string, line: number, column: number, length: number): string {
  const lines = readFileSync(join(dir, name), 'utf8').split('\n');
  return (lines[line - 1] ?? '').slice(column - 1, column - 1 + length);
}
