/** The text and JSON reports of `deploy-sts workflows check`. */
import { ALL_RULES } from './sarif.js';
import type { Finding } from './types.js';

const NAMES = new Map(ALL_RULES.map((r) => [r.id, r.name]));

/**
 * Control characters and bidirectional overrides shown as `\u{…}`: a message quotes the workflow's own text (a line of
 * `run:`, a file name), which must not move the terminal's cursor, erase a line, or reorder what is shown.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** `file:line:column: error DSTS103 build-in-privileged-job: message`, one per line, then a summary line. */
export function textReport(findings: readonly Finding[], files: number): string {
  const lines = findings.map((f) => printable(`${f.file}:${f.line}:${f.column}: ${f.severity} ${f.rule} ${NAMES.get(f.rule) ?? ''}: ${f.message}`));
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push(findings.length === 0 ? `ok: ${plural(files, 'workflow file')} checked, no findings` : `${plural(errors, 'error')}, ${plural(warnings, 'warning')} in ${plural(files, 'workflow file')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `{"findings":[{"file","line","column","rule","severity","message"}],"files":N}`, indented by two spaces: the bytes
 * of `JSON.stringify(report, null, 2)`, written field by field because V8's fast serializer does not indent (the
 * indenting one took 15–25 ms for 462 findings, a twentieth of a whole run).
 */
export function jsonReport(findings: readonly Finding[], files: number): string {
  if (findings.length === 0) return `{\n  "findings": [],\n  "files": ${JSON.stringify(files)}\n}\n`;
  const s = JSON.stringify;
  const items = findings.map(
    (f) =>
      `    {\n      "file": ${s(f.file)},\n      "line": ${s(f.line)},\n      "column": ${s(f.column)},\n      "rule": ${s(f.rule)},\n      "severity": ${s(f.severity)},\n      "message": ${s(f.message)}\n    }`,
  );
  return `{\n  "findings": [\n${items.join(',\n')}\n  ],\n  "files": ${s(files)}\n}\n`;
}

/** 0 when nothing at error level was found, 1 otherwise. */
export function exitCodeOf(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.severity === 'error') ? 1 : 0;
}
