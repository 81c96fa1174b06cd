/**
 * Policy globs: the only pattern language a policy may use (never a user-supplied regex).
 *
 * - Anchored: the pattern must match the whole value.
 * - `*` matches any run of characters except `/`, including the empty run.
 * - `**` matches any run of characters, `/` included, including the empty run.
 * - Every other character is literal (`.`, `?`, `[`, `+`, `(`, `\` … mean themselves).
 *
 * Matching simulates the pattern's automaton over the value (one pass, a set of live positions), so it
 * takes O(pattern × value) time whatever the input: there is no backtracking to exploit.
 */

/** Longest pattern a policy may contain. */
export const MAX_GLOB_LENGTH = 512;
/** Values longer than this never match a wildcard pattern (claims are at most 1024 characters). */
export const MAX_GLOB_VALUE_LENGTH = 8192;

export interface GlobOptions {
  /** Fold ASCII letters on both sides (A–Z only: no Unicode case folding, so `K` (Kelvin) never equals `k`). */
  caseInsensitive?: boolean;
}

export interface Glob {
  /** The pattern as written. */
  readonly source: string;
  /** True when the pattern has no wildcard: it matches exactly one string. */
  readonly literal: boolean;
  test(value: string): boolean;
}

export class GlobError extends Error {
  readonly code = 'invalid_glob';
  constructor(
    readonly pattern: string,
    readonly problem: string,
  ) {
    super(`invalid pattern ${JSON.stringify(pattern)}: ${problem}`);
    this.name = 'GlobError';
  }
}

const STAR = -1;
const GLOBSTAR = -2;
const SLASH = 0x2f;

/** True when the pattern contains a wildcard. */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** Fold A–Z to a–z and nothing else. */
export function foldAscii(value: string): string {
  return value.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

/** Why a pattern is malformed, or undefined when it is a valid glob. */
export function globProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return 'a pattern must be a string';
  if (pattern.length === 0) return 'a pattern may not be empty';
  if (pattern.length > MAX_GLOB_LENGTH) return `a pattern may be at most ${MAX_GLOB_LENGTH} characters long`;
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'a pattern may not contain control characters';
  const run = /\*{3,}/.exec(pattern);
  if (run) {
    return `"${run[0]}" is not a wildcard: use * (any characters except /) or ** (any characters, / included)`;
  }
  return undefined;
}

/** Tokens: a UTF-16 code unit (>= 0), STAR or GLOBSTAR. */
function tokenize(pattern: string): Int32Array {
  const tokens: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '*') {
      if (pattern[i + 1] === '*') {
        tokens.push(GLOBSTAR);
        i++;
      } else {
        tokens.push(STAR);
      }
    } else {
      tokens.push(pattern.charCodeAt(i));
    }
  }
  return Int32Array.from(tokens);
}

/** Compile a glob; throws GlobError when the pattern is malformed (see globProblem). */
export function compileGlob(pattern: string, options: GlobOptions = {}): Glob {
  const problem = globProblem(pattern);
  if (problem !== undefined) throw new GlobError(String(pattern), problem);
  const fold = options.caseInsensitive === true;
  const normalised = fold ? foldAscii(pattern) : pattern;

  if (!isGlob(pattern)) {
    return {
      source: pattern,
      literal: true,
      test: (value) => typeof value === 'string' && (fold ? foldAscii(value) : value) === normalised,
    };
  }

  const tokens = tokenize(normalised);
  const m = tokens.length;
  return {
    source: pattern,
    literal: false,
    test(value) {
      if (typeof value !== 'string' || value.length > MAX_GLOB_VALUE_LENGTH) return false;
      return run(tokens, m, fold ? foldAscii(value) : value);
    },
  };
}

/** Simulate the automaton: live[i] means the first i tokens can match the input read so far. */
function run(tokens: Int32Array, m: number, value: string): boolean {
  let live = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  live[0] = 1;
  close(tokens, m, live);
  for (let j = 0; j < value.length; j++) {
    const c = value.charCodeAt(j);
    next.fill(0);
    let any = false;
    for (let i = 0; i < m; i++) {
      if (live[i] === 0) continue;
      const t = tokens[i]!;
      if (t === GLOBSTAR || (t === STAR && c !== SLASH)) {
        next[i] = 1;
        any = true;
      } else if (t === c) {
        next[i + 1] = 1;
        any = true;
      }
    }
    if (!any) return false;
    close(tokens, m, next);
    [live, next] = [next, live];
  }
  return live[m] === 1;
}

/** A wildcard may match the empty run: position i live ⇒ i + 1 live when token i is a wildcard. */
function close(tokens: Int32Array, m: number, live: Uint8Array): void {
  for (let i = 0; i < m; i++) {
    if (live[i] === 1 && tokens[i]! < 0) live[i + 1] = 1;
  }
}
