/**
 * One `when` condition: how its patterns compare with a claim (the case rules), and how it fares against a token.
 *
 * Case rules, as GitHub treats names:
 * - `environment`: case-insensitive (ASCII letters only).
 * - `job_workflow_ref`, `workflow_ref`: the leading `owner/repo/` is case-insensitive, the rest (path@ref) is not.
 *   So that the two parts line up, the owner/repo part of such a pattern may use `*` but not `**`.
 * - Everything else (refs, paths, ids, event names, custom properties): exact.
 */
import { CONDITION_CLAIMS, type ConditionClaim } from '../oidc/claims.js';
import { GlobError, anyGlobMatches, compileGlob, foldAscii, globProblem } from './glob.js';
import type { Condition } from './types.js';
import { quote as quoteText } from '../../shared/text.js';

export type CaseMode = 'exact' | 'insensitive' | 'owner-repo-insensitive';

/** `repo_property_<name>`: GitHub custom property names are letters, digits, `_`, `-`, `$` and `#`, at most 75. */
export const REPO_PROPERTY_KEY = /^repo_property_[A-Za-z0-9_$#-]{1,75}$/;

export function isConditionClaim(key: string): key is ConditionClaim {
  return (CONDITION_CLAIMS as readonly string[]).includes(key) || REPO_PROPERTY_KEY.test(key);
}

export function caseModeFor(claim: string): CaseMode {
  if (claim === 'environment') return 'insensitive';
  if (claim === 'job_workflow_ref' || claim === 'workflow_ref') return 'owner-repo-insensitive';
  return 'exact';
}

/** Index just past the second `/` (the end of `owner/repo/`), or the length when there are fewer. */
function ownerRepoEnd(value: string): number {
  const first = value.indexOf('/');
  if (first < 0) return value.length;
  const second = value.indexOf('/', first + 1);
  return second < 0 ? value.length : second + 1;
}

function foldOwnerRepo(value: string): string {
  const end = ownerRepoEnd(value);
  // For speed: an owner/repo part without capitals (the common case) is already folded; the value is kept whole.
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return foldAscii(value.slice(0, end)) + value.slice(end);
  }
  return value;
}

/** Why a pattern is unusable for this claim, or undefined. */
export function conditionPatternProblem(claim: string, pattern: unknown): string | undefined {
  const problem = globProblem(pattern);
  if (problem !== undefined) return problem;
  if (caseModeFor(claim) === 'owner-repo-insensitive' && (pattern as string).slice(0, ownerRepoEnd(pattern as string)).includes('**')) {
    return `the owner/repo part of a ${claim} pattern may use * but not **, e.g. acme/*/.github/workflows/deploy.yml@refs/heads/main`;
  }
  return undefined;
}

/** Compile a condition. Throws GlobError for a malformed pattern (the schema refuses those first). */
export function compileCondition(claim: ConditionClaim, patterns: readonly string[]): Condition {
  const mode = caseModeFor(claim);
  for (const p of patterns) {
    const problem = conditionPatternProblem(claim, p);
    if (problem !== undefined) throw new GlobError(String(p), problem);
  }
  const globs = patterns.map((p) =>
    mode === 'owner-repo-insensitive' ? compileGlob(foldOwnerRepo(p)) : compileGlob(p, { caseInsensitive: mode === 'insensitive' }),
  );
  const prepare = mode === 'owner-repo-insensitive' ? foldOwnerRepo : (v: string) => v;
  return {
    claim,
    patterns: [...patterns],
    test(value) {
      if (typeof value !== 'string' || value === '') return false;
      const v = prepare(value);
      return anyGlobMatches(globs, v);
    },
  };
}

/** How one condition fared: the claim's value when it is a string, and a sentence saying why. */
export interface ConditionOutcome {
  claim: string;
  patterns: string[];
  value: string | undefined;
  ok: boolean;
  why: string;
}

/** Render a value for an explanation: JSON-quoted, long values cut. */
export const quote = (value: string): string => quoteText(value, 200);

export function patternList(patterns: readonly string[]): string {
  return `[${patterns.map(quote).join(',')}]`;
}

function absentHint(claim: string): string {
  if (claim === 'environment') return 'the job has no environment';
  if (claim === 'base_ref' || claim === 'head_ref') return 'only pull request events set it';
  if (claim.startsWith('repo_property_')) {
    return `the repository has no custom property ${quote(claim.slice('repo_property_'.length))}`;
  }
  return 'the token does not carry it';
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Read an own claim; claims may be any JSON (or worse), so nothing here may throw. */
export function readClaim(claims: unknown, name: string): unknown {
  if (typeof claims !== 'object' || claims === null) return undefined;
  return Object.prototype.hasOwnProperty.call(claims, name) ? (claims as Record<string, unknown>)[name] : undefined;
}

export function evaluateCondition(condition: Condition, claims: unknown): ConditionOutcome {
  const { claim } = condition;
  const patterns = [...condition.patterns];
  const raw = readClaim(claims, claim);
  if (raw === undefined || raw === null) {
    return { claim, patterns, value: undefined, ok: false, why: `${claim} is absent (${absentHint(claim)})` };
  }
  if (typeof raw !== 'string') {
    return { claim, patterns, value: undefined, ok: false, why: `${claim} is not a string (got ${typeName(raw)})` };
  }
  if (raw === '') {
    return { claim, patterns, value: raw, ok: false, why: `${claim} is empty (${absentHint(claim)})` };
  }
  const ok = condition.test(raw);
  const why = ok
    ? `${claim} ${quote(raw)} is one of ${patternList(patterns)}`
    : `${claim} ${quote(raw)} is not one of ${patternList(patterns)}`;
  return { claim, patterns, value: raw, ok, why };
}
