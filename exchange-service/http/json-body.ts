/**
 * JSON bodies get the checks form bodies get: JSON.parse keeps the last of duplicated keys silently, so a body is
 * scanned first, and a key given twice in any object (`{"resource":"site:a","resource":"site:b"}`, or the same key
 * spelt with escapes) is refused like a repeated form parameter; more than MAX_PARAMETERS keys at the top level are
 * refused like too many form parameters. Malformed JSON is left to JSON.parse to report.
 */

/** The same limit as form bodies (express.urlencoded's parameterLimit). */
export const MAX_PARAMETERS = 20;

export type JsonBodyProblem = { kind: 'duplicate_key'; key: string } | { kind: 'too_many_keys' };

interface Frame {
  object: boolean;
  keys: Set<string>;
  /** In an object: the next string is a key. */
  expectKey: boolean;
}

/** Why a JSON text must be refused before parsing, or undefined. One pass, no recursion (depth cannot blow the stack). */
export function jsonBodyProblem(text: string): JsonBodyProblem | undefined {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) return undefined; // unterminated: JSON.parse reports it
      if (top?.object && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          return undefined;
        }
        if (top.keys.has(key)) return { kind: 'duplicate_key', key };
        top.keys.add(key);
        top.expectKey = false;
        if (stack.length === 1 && top.keys.size > MAX_PARAMETERS) return { kind: 'too_many_keys' };
      }
      i = j;
    } else if (c === '{') {
      stack.push({ object: true, keys: new Set(), expectKey: true });
    } else if (c === '[') {
      stack.push({ object: false, keys: new Set(), expectKey: false });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',' && top?.object) {
      top.expectKey = true;
    }
  }
  return undefined;
}
