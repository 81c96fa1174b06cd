/**
 * DSTS001: the file cannot be checked — invalid YAML, or not a workflow (no `on:` or `jobs:`). The checker fails
 * closed: a file it cannot read is an error, not a pass.
 */
import type { RuleMeta } from '../types.js';

export const workflowSyntax: RuleMeta = {
  id: 'DSTS001',
  name: 'workflow-syntax',
  severity: 'error',
  summary: 'A workflow file is not valid YAML, or is not a workflow (no on: or jobs:).',
  why: 'A file the checker cannot read cannot be shown safe, and GitHub will not run it as you expect either.',
  fix: 'Correct the file at the position shown (GitHub\'s workflow editor and `actionlint` point at the same place).',
};
