/**
 * Small text helpers for messages people read, shared by the Action and the service (dependency-free, so the
 * Action's bundle inlines it): one way to quote a value someone else chose, one way to print a duration.
 */

/** Quote a value someone else chose (a client, a token, a policy), cut short: messages never carry an essay. */
export function quote(value: unknown, max = 100): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value ?? null) ?? String(value));
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** Milliseconds as seconds for a message: `1.5s`; `digits` decimals at most, trailing zeros dropped. */
export function seconds(ms: number, digits = 1): string {
  return `${Number((ms / 1000).toFixed(digits))}s`;
}
