/**
 * Accepting a finding on purpose: a comment `deploy-sts: ignore[DSTS103] <reason>` on the line a finding points at
 * (a YAML comment, or a shell comment inside `run:`), or alone on the line just above it, removes that rule's
 * findings on that line. The reason is required — a suppression without one is ignored, so the finding stays.
 */
import type { Finding } from './types.js';

const SUPPRESSION = /deploy-sts:\s*ignore\[\s*(DSTS\d{3}(?:\s*,\s*DSTS\d{3})*)\s*\]\s*\S/g;

/**
 * Where the line's comment starts: the first `#` at the line's start or after white space, outside single and double
 * quotes (and not escaped) — as both YAML and the shell read it. A suppression inside a string
 * (`echo "# deploy-sts: ignore[DSTS103] x"; npm ci`) is text the script prints, not a comment someone reviewed.
 */
export function commentStart(line: string): number {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === '\\') i++;
    else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return i;
  }
  return -1;
}

/** Rule ids suppressed on a line (by its comment). */
export function suppressedOn(line: string): Set<string> {
  const ids = new Set<string>();
  const start = commentStart(line);
  if (start < 0) return ids;
  for (const m of line.slice(start).matchAll(SUPPRESSION)) for (const id of m[1]!.split(',')) ids.add(id.trim());
  return ids;
}

/** The findings not suppressed on their line; `texts` maps a file (as findings name it) to its text. */
export function withoutSuppressed(findings: readonly Finding[], texts: ReadonlyMap<string, string>): Finding[] {
  const lines = new Map<string, string[]>();
  return findings.filter((f) => {
    const text = texts.get(f.file);
    if (text === undefined) return true;
    let fileLines = lines.get(f.file);
    if (!fileLines) {
      fileLines = text.split('\n');
      lines.set(f.file, fileLines);
    }
    if (suppressedOn(fileLines[f.line - 1] ?? '').has(f.rule)) return false;
    const above = fileLines[f.line - 2] ?? '';
    return !(/^\s*#/.test(above) && suppressedOn(above).has(f.rule));
  });
}
