/**
 * Text the service (or a token) chose, made safe for one line of the log or summary: control characters —
 * which could start a workflow command (`::set-env::`) on a new line or rewrite the terminal — become spaces,
 * and long text is cut.
 */

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function hasControlCharacters(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/** `text` on one line, at most `max` characters (then `…`). */
export function printable(text: string, max = 500): string {
  const line = text.replace(CONTROL_CHARACTERS, ' ');
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
