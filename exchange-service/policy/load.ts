/**
 * Loading the policies directory: read, parse (keeping source positions), validate, check across files, and
 * either build the PolicySet or report every problem of every file as `file:line:column: message`.
 *
 * The directory is read non-recursively: every `*.yml` / `*.yaml` entry that is a regular file (symlinks are
 * followed, as Kubernetes ConfigMap volumes use them), in name order. Names starting with `.` are skipped
 * (ConfigMap volumes keep their `..data` bookkeeping there). Subdirectories are not read.
 *
 * `checkPolicies` is the one code path for start-up, `deploy-sts policy check` and live reloads.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import type { ConditionClaim } from '../oidc/claims.js';
import { compileCondition } from './condition.js';
import { KEY_ISSUE, validatePolicyData, type PolicyData } from './schema.js';
import { createPolicySet, orgFileMayGovern } from './set.js';
import { toUpstream } from './upstream.js';
import { isGlob } from './glob.js';
import { PolicyLoadError, type Condition, type PolicyFile, type PolicyProblem, type PolicySet, type Rule } from './types.js';

export const MAX_POLICY_FILE_BYTES = 1024 * 1024;
const POLICY_FILE = /\.ya?ml$/i;

export interface PolicySource {
  /** Name relative to the policies directory (PolicyFile.file). */
  file: string;
  text: string;
  /** How problems name the file (default: `file`). */
  display?: string;
}

export type PolicyCheck = { ok: true; set: PolicySet; summary: string } | { ok: false; problems: PolicyProblem[] };

type PathSegment = PropertyKey;

interface Position {
  line: number;
  column: number;
}

interface ParsedFile {
  policy: PolicyFile;
  display: string;
  /** Positions the cross-file checks may report, taken while the document is at hand so it is not kept alive. */
  sitePosition: Position;
  sitesPositions: Position[];
}

// ---------------------------------------------------------------------------------------------------------
// Source positions

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

/** A locator for paths in one YAML document: the value node at the path, or its key, or the nearest ancestor. */
function locator(doc: Document, lines: LineCounter): (at: readonly PathSegment[], key?: boolean) => Position {
  const position = (offset: number | undefined): Position => {
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  return (at, key = false) => {
    let node: unknown = doc.contents;
    let found: unknown = node;
    let keyNode: unknown;
    for (const segment of at) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(segment));
        if (pair === undefined) break;
        keyNode = pair.key;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
        keyNode = undefined;
        node = node.items[segment];
      } else break;
      found = node;
    }
    const target = key && keyNode !== undefined && found === node ? keyNode : found;
    const range = (target as { range?: [number, number, number] } | null)?.range;
    return position(range?.[0]);
  };
}

// ---------------------------------------------------------------------------------------------------------
// Issues → problems

interface Located {
  path: PathSegment[];
  message: string;
  key: boolean;
}

/** The input is not even of this alternative's type (a union counts when none of its alternatives is). */
function isRootTypeMismatch(issue: z.core.$ZodIssue): boolean {
  if (issue.path.length > 0) return false;
  if (issue.code === 'invalid_type') return true;
  return issue.code === 'invalid_union' && issue.errors.every((branch) => branch.every(isRootTypeMismatch));
}

/** One entry per problem: unknown keys one by one, unions reduced to the alternative the input was aiming at. */
function flatten(issue: z.core.$ZodIssue, prefix: PathSegment[] = []): Located[] {
  const at = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ path: [...at, k], key: true, message: `unknown key ${JSON.stringify(k)}: ${issue.message}` }));
  }
  if (issue.code === 'invalid_union') {
    const aimed = issue.errors.filter((branch) => !branch.every(isRootTypeMismatch));
    if (aimed.length === 1) return aimed[0]!.flatMap((i) => flatten(i, at));
    return [{ path: at, key: false, message: issue.message }];
  }
  const key = issue.code === 'custom' && issue.params?.at === KEY_ISSUE.at;
  return [{ path: at, key, message: issue.message }];
}

function pathText(at: readonly PathSegment[]): string {
  let text = '';
  for (const segment of at) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

/** `rules[0].when: unknown condition …`; no path repeated when the message already starts with the key. */
function withPath(located: Located): string {
  const last = located.path[located.path.length - 1];
  const parent = located.path.slice(0, -1);
  if (typeof last === 'string' && located.message.startsWith(`${last} `)) {
    return parent.length === 0 ? located.message : `${pathText(parent)}: ${located.message}`;
  }
  if (located.key) return parent.length === 0 ? located.message : `${pathText(parent)}: ${located.message}`;
  return located.path.length === 0 ? located.message : `${pathText(located.path)}: ${located.message}`;
}

// ---------------------------------------------------------------------------------------------------------
// One file

/**
 * Compiled conditions of one load, by claim and patterns: a fleet of sites repeats the same conditions (event names,
 * refs, environments), and conditions are immutable, so each distinct one is compiled and held once.
 */
type ConditionCache = Map<string, Condition>;

function internCondition(cache: ConditionCache, claim: ConditionClaim, patterns: string[]): Condition {
  const key = JSON.stringify([claim, patterns]);
  let condition = cache.get(key);
  if (!condition) {
    condition = compileCondition(claim, patterns);
    cache.set(key, condition);
  }
  return condition;
}

function toPolicyFile(name: string, data: PolicyData, raw: unknown, conditions: ConditionCache): PolicyFile {
  const rawRules = (raw as { rules?: unknown[] }).rules ?? [];
  const rules: Rule[] = data.rules.map((rule, index) => {
    const when = rule.when as Record<string, string[] | undefined>;
    // Conditions in the order the file wrote them (explanations name the first that fails).
    const rawWhen = (rawRules[index] as { when?: Record<string, unknown> } | undefined)?.when ?? {};
    const order = [...new Set([...Object.keys(rawWhen), ...Object.keys(when)])];
    return {
      name: rule.name,
      context: rule.context,
      permissions: [...new Set(rule.permissions)],
      maxTtl: rule.max_ttl,
      when: order.flatMap((claim) => {
        const patterns = when[claim];
        return patterns === undefined ? [] : [internCondition(conditions, claim as ConditionClaim, patterns)];
      }),
    };
  });
  const common = {
    file: name,
    repository: data.repository,
    repositoryId: data.repository_id,
    ...(data.repository_owner_id !== undefined ? { repositoryOwnerId: data.repository_owner_id } : {}),
    ...(data.token_audience !== undefined ? { tokenAudience: data.token_audience } : {}),
    rules,
  };
  if (data.kind === 'site') {
    const upstream = data.upstream ? { upstream: toUpstream(data.upstream) } : {};
    return { kind: 'site', site: data.site, ...(data.org !== undefined ? { org: data.org } : {}), ...common, ...upstream };
  }
  return { kind: 'org', org: data.org, sites: [...data.sites], ...common };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

function parseSource(source: PolicySource, conditions: ConditionCache): { parsed?: ParsedFile; problems: PolicyProblem[] } {
  const display = source.display ?? source.file;
  const lines = new LineCounter();
  const problem = (pos: Position, message: string): PolicyProblem => ({ file: display, line: pos.line, column: pos.column, message });
  const at = (offset: number): Position => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };

  const doc = parseDocument(source.text, {
    lineCounter: lines,
    prettyErrors: false,
    strict: true,
    uniqueKeys: true,
    stringKeys: true,
    version: '1.2',
    schema: 'core',
    merge: false,
  });
  const yamlProblems = [...doc.errors, ...doc.warnings].map((e) => problem(at(e.pos[0]), `YAML: ${firstLine(e.message)}`));
  if (yamlProblems.length > 0) return { problems: yamlProblems };
  if (doc.contents === null) {
    return {
      problems: [
        problem({ line: 1, column: 1 }, 'the file is empty: a policy file has site: (a site file) or org: and sites: (an org file), then repository, repository_id and rules'),
      ],
    };
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    return { problems: [problem({ line: 1, column: 1 }, `YAML: ${firstLine((error as Error).message)}`)] };
  }

  const locate = locator(doc, lines);
  const validation = validatePolicyData(raw);
  if (!validation.success) {
    const problems = validation.issues.flatMap((issue) => flatten(issue)).map((l) => problem(locate(l.path, l.key), withPath(l)));
    return { problems };
  }
  const policy = toPolicyFile(source.file, validation.data, raw, conditions);
  const sitePosition = locate(['site']);
  const sitesPositions = (policy.sites ?? []).map((_, index) => locate(['sites', index]));
  return { parsed: { policy, display, sitePosition, sitesPositions }, problems: [] };
}

// ---------------------------------------------------------------------------------------------------------
// Across files

function crossFileProblems(files: readonly ParsedFile[]): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const siteFiles = new Map<string, ParsedFile>();
  for (const f of files) {
    const { policy } = f;
    if (policy.kind !== 'site' || policy.site === undefined) continue;
    const first = siteFiles.get(policy.site);
    if (first === undefined) {
      siteFiles.set(policy.site, f);
      continue;
    }
    const pos = f.sitePosition;
    problems.push({
      file: f.display,
      ...pos,
      message: `site ${JSON.stringify(policy.site)} is already defined in ${first.display}: a site has exactly one site file (put rules shared by several sites in an org file)`,
    });
  }
  for (const f of files) {
    const { policy } = f;
    if (policy.kind !== 'org') continue;
    (policy.sites ?? []).forEach((slug, index) => {
      if (isGlob(slug)) return;
      const own = siteFiles.get(slug);
      if (own === undefined || orgFileMayGovern(policy, own.policy)) return;
      problems.push({
        file: f.display,
        ...f.sitesPositions[index]!,
        message: own.policy.org === undefined
          ? `site ${JSON.stringify(slug)} has a site file (${own.display}) that names no org: an org file only governs sites whose site file says org: ${policy.org ?? ''}`
          : `site ${JSON.stringify(slug)} belongs to org ${JSON.stringify(own.policy.org)} (${own.display}), not ${JSON.stringify(policy.org)}: an org file only governs its own org's sites`,
      });
    });
  }
  return problems;
}

function summarise(files: readonly PolicyFile[], set: PolicySet): string {
  const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
  const siteFiles = files.filter((f) => f.kind === 'site').length;
  const rules = files.flatMap((f) => f.rules);
  const production = rules.filter((r) => r.context === 'production').length;
  return (
    `${count(files.length, 'policy file')} (${siteFiles} site, ${files.length - siteFiles} org), ` +
    `${count(set.siteCount(), 'site')} named, ${count(rules.length, 'rule')} (${production} production, ${rules.length - production} preview)`
  );
}

function byPosition(order: Map<string, number>) {
  return (a: PolicyProblem, b: PolicyProblem) =>
    (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line || a.column - b.column;
}

/** Validate policy texts (the whole set): every problem of every file, or the set. */
export function checkPolicyTexts(sources: readonly PolicySource[]): PolicyCheck {
  const problems: PolicyProblem[] = [];
  const parsed: ParsedFile[] = [];
  const conditions: ConditionCache = new Map();
  for (const source of sources) {
    const result = parseSource(source, conditions);
    problems.push(...result.problems);
    if (result.parsed) parsed.push(result.parsed);
  }
  problems.push(...crossFileProblems(parsed));
  if (problems.length > 0) {
    const order = new Map(sources.map((s, i) => [s.display ?? s.file, i]));
    const seen = new Set<string>();
    const unique = problems.filter((p) => {
      const id = `${p.file}\0${p.line}\0${p.column}\0${p.message}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
    return { ok: false, problems: unique.sort(byPosition(order)) };
  }
  const files = parsed.map((p) => p.policy);
  const set = createPolicySet(files);
  return { ok: true, set, summary: summarise(files, set) };
}

function dirProblem(dir: string, message: string): PolicyProblem {
  return { file: dir, line: 0, column: 0, message };
}

/** Read the policy files of a directory, or say why it cannot be read. */
async function readPolicyDir(dir: string): Promise<{ sources: PolicySource[]; problems: PolicyProblem[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.') && POLICY_FILE.test(n)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? 'the policies directory does not exist'
        : code === 'ENOTDIR'
          ? 'the policies directory is not a directory'
          : code === 'EACCES'
            ? 'the policies directory cannot be read (permission denied)'
            : `the policies directory cannot be read: ${(error as Error).message}`;
    return { sources: [], problems: [dirProblem(dir, message)] };
  }

  const sources: PolicySource[] = [];
  const problems: PolicyProblem[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const name of names) {
    const full = path.join(dir, name);
    try {
      const info = await stat(full);
      if (!info.isFile()) continue;
      if (info.size > MAX_POLICY_FILE_BYTES) {
        problems.push(dirProblem(full, `the file is larger than ${MAX_POLICY_FILE_BYTES} bytes; a policy file is a few rules`));
        continue;
      }
      const bytes = await readFile(full);
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        problems.push(dirProblem(full, 'the file is not valid UTF-8'));
        continue;
      }
      sources.push({ file: name, text, display: full });
    } catch (error) {
      problems.push(dirProblem(full, `cannot be read: ${(error as Error).message}`));
    }
  }
  if (sources.length === 0 && problems.length === 0) {
    problems.push(dirProblem(dir, `no policy files in ${dir} (expected *.yml or *.yaml files)`));
  }
  return { sources, problems };
}

/** The shared path for start-up, `deploy-sts policy check` and live reloads. Never throws for bad input. */
export async function checkPolicies(dir: string): Promise<PolicyCheck> {
  const { sources, problems } = await readPolicyDir(dir);
  const checked = checkPolicyTexts(sources);
  if (problems.length === 0) return checked;
  return { ok: false, problems: [...problems, ...(checked.ok ? [] : checked.problems)] };
}

/** Load a directory or throw PolicyLoadError listing every problem. */
export async function loadPolicyDir(dir: string): Promise<PolicySet> {
  const result = await checkPolicies(dir);
  if (!result.ok) throw new PolicyLoadError(result.problems);
  return result.set;
}

/** Load several files given as text (tests, tools). Throws PolicyLoadError. */
export function loadPolicyTexts(sources: readonly PolicySource[]): PolicySet {
  const result = checkPolicyTexts(sources);
  if (!result.ok) throw new PolicyLoadError(result.problems);
  return result.set;
}

/** Load one file given as text. Throws PolicyLoadError. */
export function loadPolicyText(file: string, text: string): PolicySet {
  return loadPolicyTexts([{ file, text }]);
}
