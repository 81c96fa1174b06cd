/** What the CLI prints: lines on stdout, JSON with the HTTP API's snake_case names, tables with a header row. */

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function warn(text: string): void {
  process.stderr.write(`deploy-sts: warning: ${text}\n`);
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A value with every object key in snake_case (`expiresAt` → `expires_at`), as the HTTP API and the logs name them. */
export function snakeCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCase);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v !== 'function').map(([k, v]) => [snake(k), snakeCase(v)]));
  }
  return value;
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
