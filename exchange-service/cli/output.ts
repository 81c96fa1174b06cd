/** What the CLI prints: lines on stdout, JSON with the HTTP API's snake_case names, tables with a header row. */
import { snakeCase } from '../json-names.js';

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function warn(text: string): void {
  process.stderr.write(`deploy-sts: warning: ${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(snakeCase(value), null, 2));
}

/** Rows under a header row, each column as wide as its widest cell (the last one unpadded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
