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
/** Whether any of `globs` matches `value`: an indexed loop, not some(), so no closure or iterator per call (every
 * exchange runs it for its site and its conditions). */
export function anyGlobMatches(globs: readonly Glob[], value: string): boolean {
  for (let i = 0; i < globs.length; i++) if (globs[i]!.test(value)) return true;
  return false;
}

export function foldAscii(value: string): string {
  // Most values have no capital: for speed, they are returned as they are, without a pass of replace.
  return UPPER.test(value) ? value.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : value;
}

const UPPER = /[A-Z]/;

/** `foldAscii(a) === foldAscii(b)`, without building either (folding keeps the length). */
export function equalFoldingAscii(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y && (x >= 0x41 && x <= 0x5a ? x + 0x20 : x) !== (y >= 0x41 && y <= 0x5a ? y + 0x20 : y)) return false;
  }
  return true;
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

let rowA = new Uint8Array(64);
let rowB = new Uint8Array(64);

/** Simulate the automaton: live[i] means the first i tokens can match the input read so far. */
function run(tokens: Int32Array, m: number, value: string): boolean {
  // For speed, the two state rows are reused by every run (it is synchronous), not two typed arrays per test.
  if (rowA.length < m + 1) {
    rowA = new Uint8Array(m + 1);
    rowB = new Uint8Array(m + 1);
  }
  let live = rowA;
  let next = rowB;
  live.fill(0, 0, m + 1);
  live[0] = 1;
  close(tokens, m, live);
  for (let j = 0; j < value.length; j++) {
    const c = value.charCodeAt(j);
    next.fill(0, 0, m + 1);
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
    const swap = live;
    live = next;
    next = swap;
  }
  return live[m] === 1;
}

/** A wildcard may match the empty run: position i live ⇒ i + 1 live when token i is a wildcard. */
function close(tokens: Int32Array, m: number, live: Uint8Array): void {
  for (let i = 0; i < m; i++) {
    if (live[i] === 1 && tokens[i]! < 0) live[i + 1] = 1;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Intersection: can two globs match a common string?

export interface IntersectionOptions {
  /** Only strings over these characters count (default: any string). */
  alphabet?: string;
  /** The first character must be one of these (default: the alphabet). */
  firstAlphabet?: string;
  /** Only non-empty strings count. */
  nonEmpty?: boolean;
  /** Only strings at most this long count (default: no limit). */
  maxLength?: number;
}

/**
 * A shortest string both globs match (within the options' language), or undefined when there is none. Exact, not
 * sampled: a breadth-first search of the product of the two patterns' automata, whose states are pairs of positions
 * (at most (|a| + 1) × (|b| + 1)). The automata tell characters apart only by being a literal of either pattern or
 * `/`; every other character behaves alike, so one stand-in for them is enough. A search by length finds a shortest
 * witness, so `maxLength` is decided exactly too.
 */
export function globIntersection(a: string, b: string, options: IntersectionOptions = {}): string | undefined {
  const ta = tokenize(a);
  const tb = tokenize(b);
  const ma = ta.length;
  const mb = tb.length;
  const letters = letterClasses(ta, tb, options.alphabet);
  const first = options.firstAlphabet === undefined ? letters : letters.filter((c) => options.firstAlphabet!.includes(String.fromCharCode(c)));
  const width = mb + 1;
  // Two copies of the product: before the first character (where firstAlphabet applies) and after it.
  const size = (ma + 1) * width;
  const seen = new Uint8Array(2 * size);
  const parent = new Int32Array(2 * size).fill(-1);
  const via = new Int32Array(2 * size);

  const closeFrom = (i: number, j: number, out: number[], from: number, letter: number) => {
    // Epsilon moves: a wildcard may match the empty run, on either side.
    const phase = from === -2 ? 0 : size;
    const stack = [phase + i * width + j];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (seen[s] === 1) continue;
      seen[s] = 1;
      parent[s] = from;
      via[s] = letter;
      out.push(s);
      const si = Math.floor((s - phase) / width);
      const sj = (s - phase) % width;
      if (si < ma && ta[si]! < 0) stack.push(phase + (si + 1) * width + sj);
      if (sj < mb && tb[sj]! < 0) stack.push(phase + si * width + sj + 1);
    }
  };
  const step = (tokens: Int32Array, m: number, i: number, c: number): number[] => {
    if (i >= m) return [];
    const t = tokens[i]!;
    if (t === GLOBSTAR || (t === STAR && c !== SLASH)) return [i];
    return t === c ? [i + 1] : [];
  };
  const witness = (s: number): string => {
    const chars: number[] = [];
    for (let at = s; parent[at] !== -1 && parent[at] !== -2; at = parent[at]!) {
      if (via[at]! >= 0) chars.push(via[at]!);
    }
    return String.fromCharCode(...chars.reverse());
  };

  let frontier: number[] = [];
  closeFrom(0, 0, frontier, -2, -1);
  const limit = options.maxLength ?? Number.POSITIVE_INFINITY;
  for (let length = 0; frontier.length > 0; length++) {
    const accept = length > 0 || options.nonEmpty !== true ? frontier.find((s) => s % size === ma * width + mb) : undefined;
    if (accept !== undefined) return witness(accept);
    if (length >= limit) return undefined;
    const next: number[] = [];
    for (const s of frontier) {
      const i = Math.floor((s % size) / width);
      const j = (s % size) % width;
      for (const c of length === 0 ? first : letters) {
        for (const i2 of step(ta, ma, i, c)) for (const j2 of step(tb, mb, j, c)) closeFrom(i2, j2, next, s, c);
      }
    }
    frontier = next;
  }
  return undefined;
}

/** One representative of every class of characters the two patterns tell apart, restricted to an alphabet. */
function letterClasses(ta: Int32Array, tb: Int32Array, alphabet: string | undefined): number[] {
  const literals = new Set<number>([SLASH]);
  for (const t of [...ta, ...tb]) if (t >= 0) literals.add(t);
  if (alphabet !== undefined) {
    // Within a finite alphabet every character is its own class (still few: slugs have 37).
    return [...new Set([...alphabet].map((ch) => ch.charCodeAt(0)))];
  }
  let other = 0x61; // a stand-in for every character that is neither a literal of either pattern nor `/`
  while (literals.has(other)) other++;
  return [...literals, other];
}
