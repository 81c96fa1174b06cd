/**
 * The vocabulary of `deploy-sts workflows check`: positions, severities, findings, and what every rule declares.
 */

export type Severity = 'error' | 'warning';

/** 1-based line and column in a file. */
export interface Position {
  line: number;
  column: number;
}

/** One finding as every reporter prints it. `message` says what is wrong, why it is dangerous, and the fix. */
export interface Finding {
  /** The file as the user named it (relative to the working directory when the directory was given relatively). */
  file: string;
  line: number;
  column: number;
  /** Stable rule id, e.g. `DSTS103`. */
  rule: string;
  severity: Severity;
  message: string;
}

/** What a rule is, for documentation, SARIF rule metadata and the text of each finding. */
export interface RuleMeta {
  /** Stable id: never reused, never renumbered. */
  id: string;
  /** Stable kebab-case name. */
  name: string;
  severity: Severity;
  /** One line: what the rule catches. */
  summary: string;
  /** Why it is dangerous. */
  why: string;
  /** How to fix it. */
  fix: string;
}

/** A finding before the rule's why and fix are attached: where, and what this instance is. */
export interface Hit {
  file: string;
  at: Position;
  what: string;
}

export function findingOf(rule: RuleMeta, hit: Hit): Finding {
  const what = hit.what.endsWith('.') ? hit.what : `${hit.what}.`;
  return {
    file: hit.file,
    line: hit.at.line,
    column: hit.at.column,
    rule: rule.id,
    severity: rule.severity,
    message: `${what} ${rule.why} Fix: ${rule.fix}`,
  };
}

/** Findings in file, line, column, rule order, without duplicates (a called workflow reached twice reports once). */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  const unique = findings.filter((f) => {
    const key = `${f.file}\0${f.line}\0${f.column}\0${f.rule}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)));
}
