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
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import type { z } from 'zod';
import type { ConditionClaim } from '../oidc/claims.js';
import { GITHUB_ISSUER, normaliseIssuer } from '../oidc/issuers.js';
import { compileCondition } from './condition.js';
import { didYouMean } from '../suggest.js';
import { KEY_ISSUE, allowedKeysOf, validatePolicyData, type PolicyData } from './schema.js';
import { createPolicySet, siteOverlap } from './set.js';
import { toUpstream } from './upstream.js';
import { neverMatching } from './never-match.js';
import { PolicyLoadError, type Condition, type PolicyFile, type PolicyProblem, type PolicySet, type Rule } from './types.js';

export const MAX_POLICY_FILE_BYTES = 1024 * 1024;
const POLICY_FILE = /\.ya?ml$/i;
/** Refused as keys anywhere in a policy file. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface PolicySource {
  /** Name relative to the policies directory (PolicyFile.file). */
  file: string;
  text: string;
  /** How problems name the file (default: `file`). */
  display?: string;
}

/** What the loader needs to know of the service: the issuers it trusts. */
export interface PolicyLoadOptions {
  /** DEPLOY_STS_ISSUER, normalised. */
  issuers: readonly string[];
  /**
   * The local dev issuer when it is trusted (DEPLOY_STS_DEV_ISSUER=1, loopback only). It counts as a trusted issuer,
   * and stands in for GitHub's: a file bound to GitHub's issuer also accepts its tokens (the README walk-through).
   */
  devIssuer?: string;
}

export const DEFAULT_LOAD_OPTIONS: PolicyLoadOptions = { issuers: [GITHUB_ISSUER] };

/** `warnings`: valid but surely not meant (a condition that can never match); they never stop loading. */
export type PolicyCheck =
  | { ok: true; set: PolicySet; summary: string; warnings: PolicyProblem[] }
  | { ok: false; problems: PolicyProblem[]; warnings: PolicyProblem[] };

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
  warnings: PolicyProblem[];
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
    return issue.keys.map((k) => ({ path: [...at, k], key: true, message: `unknown key ${JSON.stringify(k)}${didYouMean(k, allowedKeysOf(issue.message))}: ${issue.message}` }));
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

function toPolicyFile(name: string, data: PolicyData, raw: unknown, conditions: ConditionCache, issuer: string, issuers: string[]): PolicyFile {
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
    issuer,
    issuers,
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

/** Conditions of the file's rules that can never match a GitHub token, at their positions. */
function neverMatchWarnings(data: PolicyData, raw: unknown, locate: (at: readonly PathSegment[]) => Position, display: string): PolicyProblem[] {
  const rawRules = (raw as { rules?: unknown[] }).rules ?? [];
  return data.rules.flatMap((rule, ruleIndex) => {
    const rawWhen = ((rawRules[ruleIndex] as { when?: Record<string, unknown> } | undefined)?.when ?? {}) as Record<string, unknown>;
    return neverMatching(rule.when as Record<string, string[] | undefined>).map((w) => {
      const at: PathSegment[] = ['rules', ruleIndex, 'when', w.claim, ...(Array.isArray(rawWhen[w.claim]) ? [w.index] : [])];
      return { file: display, ...locate(at), message: `rules[${ruleIndex}] (${JSON.stringify(rule.name)}): ${w.message}` };
    });
  });
}

/** The issuer a file binds, and the issuers whose tokens it accepts; or why it cannot bind one. */
function resolveIssuer(
  written: string | undefined,
  options: PolicyLoadOptions,
): { issuer: string; issuers: string[] } | { problem: string; key: boolean } {
  const trusted = [...new Set([...options.issuers.map(normaliseIssuer), ...(options.devIssuer !== undefined ? [options.devIssuer] : [])])];
  const list = trusted.join(', ');
  let issuer: string;
  if (written !== undefined) {
    if (!trusted.includes(written)) {
      return {
        key: false,
        problem:
          `issuer ${JSON.stringify(written)} is not trusted by this service (it trusts ${list}). ` +
          `Fix: name one of those, or add it to DEPLOY_STS_ISSUER if the repository's tokens really come from it`,
      };
    }
    issuer = written;
  } else if (trusted.length === 1) {
    issuer = trusted[0]!;
  } else {
    return {
      key: true,
      problem:
        `issuer is required: this service trusts several issuers (${list}), and a policy binds exactly one, ` +
        `so that a token from one cannot satisfy a policy written for another. Fix: add issuer: with the one this file's repository gets its tokens from, e.g. issuer: ${trusted.includes(GITHUB_ISSUER) ? GITHUB_ISSUER : trusted[0]}`,
    };
  }
  const standIn = options.devIssuer !== undefined && issuer === GITHUB_ISSUER && options.devIssuer !== issuer;
  return { issuer, issuers: standIn ? [issuer, options.devIssuer!] : [issuer] };
}

function parseSource(source: PolicySource, conditions: ConditionCache, options: PolicyLoadOptions): { parsed?: ParsedFile; problems: PolicyProblem[] } {
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

  // Keys that name object internals are refused before the document becomes JavaScript objects: `__proto__` would
  // set a prototype (and slip past the unknown-key checks), `constructor` and `prototype` shadow built-ins.
  const internals: PolicyProblem[] = [];
  visit(doc, {
    Pair(_key, pair) {
      const name = keyText(pair.key);
      if (name === undefined || !FORBIDDEN_KEYS.has(name)) return;
      const range = (pair.key as { range?: [number, number, number] }).range;
      internals.push(
        problem(
          range ? at(range[0]) : { line: 1, column: 1 },
          `key ${JSON.stringify(name)} is not allowed in a policy file: __proto__, constructor and prototype name JavaScript object internals and are refused everywhere. Fix: remove it`,
        ),
      );
    },
  });
  if (internals.length > 0) return { problems: internals };

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
  const resolved = resolveIssuer(validation.data.issuer, options);
  if ('problem' in resolved) {
    return { problems: [problem(resolved.key ? locate([]) : locate(['issuer']), resolved.problem)] };
  }
  const policy = toPolicyFile(source.file, validation.data, raw, conditions, resolved.issuer, resolved.issuers);
  const sitePosition = locate(['site']);
  const sitesPositions = (policy.sites ?? []).map((_, index) => locate(['sites', index]));
  const warnings = neverMatchWarnings(validation.data, raw, (at) => locate(at), display);
  return { parsed: { policy, display, sitePosition, sitesPositions, warnings }, problems: [] };
}

// ---------------------------------------------------------------------------------------------------------
// Across files

const sameOrg = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

/**
 * The ownership model, across files: a slug has one site file at most; two orgs' `sites` patterns never match a
 * common slug (decided exactly, see siteOverlap); a site file whose slug an org's pattern matches names that org.
 * With the per-file check that an org (of an org file, or a site file's `org:`) owns the repository the file binds,
 * every site has exactly one owner.
 */
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

  const orgFiles = files.filter((f) => f.policy.kind === 'org');
  // Two orgs never share a slug: report each pattern of the later file that can match a slug of an earlier org's.
  orgFiles.forEach((later, j) => {
    const patterns = later.policy.sites ?? [];
    patterns.forEach((pattern, index) => {
      for (const earlier of orgFiles.slice(0, j)) {
        if (sameOrg(earlier.policy.org, later.policy.org)) continue;
        for (const other of earlier.policy.sites ?? []) {
          const witness = siteOverlap(other, pattern);
          if (witness === undefined) continue;
          problems.push({
            file: later.display,
            ...later.sitesPositions[index]!,
            message:
              `sites[${index}]: ${JSON.stringify(pattern)} can match the same site as ${JSON.stringify(other)} of org ${JSON.stringify(earlier.policy.org)} (${earlier.display}), ` +
              `e.g. ${JSON.stringify(witness)}: a site is governed by one org only. Fix: narrow one of the two patterns (or list the slugs literally) so that no slug matches both`,
          });
          return;
        }
      }
    });
  });

  // A site file whose slug an org's pattern matches belongs to that org.
  for (const site of siteFiles.values()) {
    const slug = site.policy.site!;
    for (const org of orgFiles) {
      if (sameOrg(org.policy.org, site.policy.org)) continue;
      const pattern = (org.policy.sites ?? []).find((p) => siteOverlap(p, slug) !== undefined);
      if (pattern === undefined) continue;
      const owner = org.policy.org ?? '';
      problems.push({
        file: site.display,
        ...site.sitePosition,
        message:
          `site ${JSON.stringify(slug)} is matched by ${JSON.stringify(pattern)} of org ${JSON.stringify(owner)} (${org.display}): ` +
          `a site file whose slug an org's sites match must say org: ${owner}, and bind a repository of ${owner}. Fix: add org: ${owner}, rename the site, or narrow ${owner}'s sites`,
      });
    }
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
export function checkPolicyTexts(sources: readonly PolicySource[], options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): PolicyCheck {
  const problems: PolicyProblem[] = [];
  const parsed: ParsedFile[] = [];
  const conditions: ConditionCache = new Map();
  for (const source of sources) {
    const result = parseSource(source, conditions, options);
    problems.push(...result.problems);
    if (result.parsed) parsed.push(result.parsed);
  }
  problems.push(...crossFileProblems(parsed));
  const order = new Map(sources.map((s, i) => [s.display ?? s.file, i]));
  const warnings = parsed.flatMap((p) => p.warnings).sort(byPosition(order));
  if (problems.length > 0) {
    const seen = new Set<string>();
    const unique = problems.filter((p) => {
      const id = `${p.file}\0${p.line}\0${p.column}\0${p.message}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
    return { ok: false, problems: unique.sort(byPosition(order)), warnings };
  }
  const files = parsed.map((p) => p.policy);
  const set = createPolicySet(files);
  return { ok: true, set, summary: summarise(files, set), warnings };
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

/** One policy file given instead of a directory (`deploy-sts policy check docs.yml`). */
async function readPolicyFile(file: string): Promise<{ sources: PolicySource[]; problems: PolicyProblem[] }> {
  try {
    const info = await stat(file);
    if (info.size > MAX_POLICY_FILE_BYTES) return { sources: [], problems: [dirProblem(file, `the file is larger than ${MAX_POLICY_FILE_BYTES} bytes; a policy file is a few rules`)] };
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
    return { sources: [{ file: path.basename(file), text, display: file }], problems: [] };
  } catch (error) {
    const message = error instanceof TypeError ? 'the file is not valid UTF-8' : `cannot be read: ${(error as Error).message}`;
    return { sources: [], problems: [dirProblem(file, message)] };
  }
}

async function isFile(target: string): Promise<boolean> {
  try {
    return (await stat(target)).isFile();
  } catch {
    return false;
  }
}

/** The shared path for start-up, `deploy-sts policy check` and live reloads. Never throws for bad input. */
export async function checkPolicies(dir: string, options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): Promise<PolicyCheck> {
  return checkSources(await readPolicyDir(dir), options);
}

/** `deploy-sts policy check|explain`: a directory of policy files, or one policy file checked on its own. */
export async function checkPolicyPath(target: string, options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): Promise<PolicyCheck> {
  return (await isFile(target)) ? checkSources(await readPolicyFile(target), options) : checkPolicies(target, options);
}

function checkSources({ sources, problems }: { sources: PolicySource[]; problems: PolicyProblem[] }, options: PolicyLoadOptions): PolicyCheck {
  const checked = checkPolicyTexts(sources, options);
  if (problems.length === 0) return checked;
  return { ok: false, problems: [...problems, ...(checked.ok ? [] : checked.problems)], warnings: checked.warnings };
}

export interface SettleOptions {
  /** How long apart the two reads are (ms). */
  intervalMs: number;
  /** Reads at most (the directory must read the same on two consecutive ones). */
  attempts: number;
}

/** A reload waits this long for the directory to read the same twice, a few times, before giving up. */
export const DEFAULT_SETTLE: SettleOptions = { intervalMs: 250, attempts: 8 };

function snapshot(read: { sources: PolicySource[]; problems: PolicyProblem[] }): string {
  return JSON.stringify([read.sources.map((s) => [s.file, s.text]), read.problems]);
}

/**
 * `checkPolicies` for live reloads: the directory is read until two consecutive reads, `intervalMs` apart, are the
 * same — a file caught in the middle of a write (truncated, and possibly still valid YAML that grants more) is never
 * loaded. When the directory keeps changing, nothing is loaded and the problem says to replace files atomically.
 */
export async function checkPoliciesSettled(
  dir: string,
  options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS,
  settle: SettleOptions = DEFAULT_SETTLE,
): Promise<PolicyCheck> {
  let previous = await readPolicyDir(dir);
  for (let attempt = 1; attempt < settle.attempts; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, settle.intervalMs));
    const current = await readPolicyDir(dir);
    if (snapshot(current) === snapshot(previous)) return checkSources(current, options);
    previous = current;
  }
  return {
    ok: false,
    problems: [
      dirProblem(
        dir,
        `the policies directory kept changing while it was read (${settle.attempts} reads, ${settle.intervalMs} ms apart), so nothing was loaded. ` +
          'Fix: replace policy files atomically — write a temporary file in the same directory (e.g. .docs.yml.tmp: names starting with . are skipped) and rename it over the old one',
      ),
    ],
    warnings: [],
  };
}

/** Load a directory or throw PolicyLoadError listing every problem. */
export async function loadPolicyDir(dir: string, options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): Promise<PolicySet> {
  const result = await checkPolicies(dir, options);
  if (!result.ok) throw new PolicyLoadError(result.problems);
  return result.set;
}

/** Load several files given as text (tests, tools). Throws PolicyLoadError. */
export function loadPolicyTexts(sources: readonly PolicySource[], options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): PolicySet {
  const result = checkPolicyTexts(sources, options);
  if (!result.ok) throw new PolicyLoadError(result.problems);
  return result.set;
}

/** Load one file given as text. Throws PolicyLoadError. */
export function loadPolicyText(file: string, text: string, options: PolicyLoadOptions = DEFAULT_LOAD_OPTIONS): PolicySet {
  return loadPolicyTexts([{ file, text }], options);
}
