/**
 * JSON the CLI prints names its fields as the HTTP API and the logs do: snake_case (`expires_at`, `repository_id`).
 * The TypeScript records are camelCase; this is the one place that renames them.
 */
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A value with every object key in snake_case (functions dropped), arrays and nested objects included. */
export function snakeCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCase);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => typeof v !== 'function')
        .map(([k, v]) => [snake(k), snakeCase(v)]),
    );
  }
  return value;
}
