/**
 * The decision: may this token get a token for this site, and in which context?
 *
 * 1. The files that govern the site (its site file, then matching org files). None → unknown_site.
 * 2. Of those, only files that bind the token's issuer and repository are tried: `iss` one the file accepts (its
 *    `issuer`), the same `repository_id` (exactly), the same `repository` (case-insensitively) and, when the file
 *    sets it, the same `repository_owner_id`.
 *    None → repository_mismatch, with a generic description: a foreign repository learns nothing about the policy.
 * 3. Rules in file order, then rule order; the first rule whose every condition matches wins.
 *    None → no_rule_matched, with every rule's first failed condition (the repository is the site's own).
 *
 * Whatever a policy says, a production rule never matches a token whose event is not trusted (fork-PR invariant).
 * Claims may be any JSON: nothing here throws, and a claim that is absent or not a string never matches.
 */
import { TRUSTED_EVENTS, isTrustedEvent } from '../oidc/claims.js';
import { evaluateCondition, quote, readClaim, type ConditionOutcome } from './condition.js';
import { equalFoldingAscii } from './glob.js';
import type { Decision, PolicyFile, PolicySet, Rule, RuleTrace } from './types.js';
import type { Upstream } from './upstream.js';

const TRUSTED = TRUSTED_EVENTS.join(', ');

function describeAbsent(claim: string, raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return `${claim} is absent (the token does not carry it)`;
  if (typeof raw !== 'string') return `${claim} is not a string`;
  return undefined;
}

/** The fork-PR invariant as a condition of every production rule. */
function trustedEventOutcome(claims: unknown): ConditionOutcome {
  const raw = readClaim(claims, 'event_name');
  const patterns = [...TRUSTED_EVENTS];
  const absent = describeAbsent('event_name', raw);
  if (absent !== undefined) {
    return { claim: 'event_name', patterns, value: undefined, ok: false, why: `${absent}: production needs a trusted event (${TRUSTED})` };
  }
  const event = raw as string;
  if (isTrustedEvent(event)) {
    return { claim: 'event_name', patterns, value: event, ok: true, why: `event_name ${quote(event)} is a trusted event (production is only for ${TRUSTED})` };
  }
  return {
    claim: 'event_name',
    patterns,
    value: event,
    ok: false,
    why:
      `event_name ${quote(event)} is not a trusted event: a production rule never matches it, whatever the policy says ` +
      `(only ${TRUSTED} can receive production; other events can run fork code and get preview at most)`,
  };
}

/** How one rule fares against the claims: every condition's outcome, and the first failure. */
export function evaluateRule(rule: Rule, claims: Record<string, unknown>, file = ''): RuleTrace {
  const conditions: ConditionOutcome[] = [];
  if (rule.context === 'production') conditions.push(trustedEventOutcome(claims));
  for (const condition of rule.when) conditions.push(evaluateCondition(condition, claims));
  const failed = conditions.find((c) => !c.ok);
  const trace: RuleTrace = { file, rule: rule.name, context: rule.context, matched: failed === undefined, conditions };
  if (failed !== undefined) trace.failure = failed.why;
  return trace;
}

export interface Binding {
  binds: boolean;
  conditions: ConditionOutcome[];
  failure?: string;
}

/** The grant of `rule` in `file` (one of the site's `files`, which may carry its upstream binding). */
function grantFrom(site: string, file: PolicyFile, rule: PolicyFile['rules'][number], files: readonly PolicyFile[]): Grant {
  const upstream = upstreamOf(files);
  // The keys in the order a reader (and JSON) sees, every required one checked by the type: two literals, not
  // `...(x ? { x } : {})` (for speed: an object each), and the optional keys that come last set after.
  const grant: { -readonly [K in keyof Grant]: Grant[K] } =
    file.org !== undefined
      ? { granted: true, site, org: file.org, file: file.file, issuer: file.issuer, rule, context: rule.context }
      : { granted: true, site, file: file.file, issuer: file.issuer, rule, context: rule.context };
  if (file.tokenAudience !== undefined) grant.tokenAudience = file.tokenAudience;
  if (upstream) grant.upstream = upstream;
  return grant;
}

/** Whether a file binds the token's issuer and repository: issuer exactly, id exactly, name case-insensitively, owner id when set. */
export function bindingOf(file: PolicyFile, claims: unknown): Binding {
  const conditions: ConditionOutcome[] = [];
  const iss = readClaim(claims, 'iss');
  const issOk = typeof iss === 'string' && file.issuers.includes(iss);
  conditions.push({
    claim: 'iss',
    patterns: [...file.issuers],
    value: typeof iss === 'string' ? iss : undefined,
    ok: issOk,
    why:
      describeAbsent('iss', iss) ??
      (issOk
        ? iss === file.issuer
          ? `iss ${quote(iss as string)} is ${quote(file.issuer)}`
          : `iss ${quote(iss as string)} (the local dev issuer) stands in for ${quote(file.issuer)}`
        : `iss ${quote(iss as string)} is not ${quote(file.issuer)} (the issuer this policy binds): a token from another issuer never matches, whatever its repository name or id`),
  });
  const repository = readClaim(claims, 'repository');
  const repositoryId = readClaim(claims, 'repository_id');
  const sameName = typeof repository === 'string' && equalFoldingAscii(repository, file.repository);

  conditions.push({
    claim: 'repository',
    patterns: [file.repository],
    value: typeof repository === 'string' ? repository : undefined,
    ok: sameName,
    why:
      describeAbsent('repository', repository) ??
      (sameName
        ? `repository ${quote(repository as string)} is ${quote(file.repository)}`
        : `repository ${quote(repository as string)} is not ${quote(file.repository)} (the repository this policy binds)`),
  });

  const idOk = typeof repositoryId === 'string' && repositoryId === file.repositoryId;
  let idWhy = describeAbsent('repository_id', repositoryId);
  if (idWhy === undefined) {
    const shown = quote(repositoryId as string);
    if (idOk) idWhy = `repository_id ${shown} is ${quote(file.repositoryId)}`;
    else if (sameName) {
      idWhy =
        `repository_id ${shown} is not ${quote(file.repositoryId)}: this is a different repository that has the name ${quote(file.repository)} ` +
        `(deleted and re-created, or another repository renamed to it); ids are never reused, so it is not trusted. ` +
        `If it is legitimately yours, update repository_id in ${file.file}`;
    } else idWhy = `repository_id ${shown} is not ${quote(file.repositoryId)}`;
  }
  conditions.push({
    claim: 'repository_id',
    patterns: [file.repositoryId],
    value: typeof repositoryId === 'string' ? repositoryId : undefined,
    ok: idOk,
    why: idWhy,
  });

  if (file.repositoryOwnerId !== undefined) {
    const ownerId = readClaim(claims, 'repository_owner_id');
    const ok = typeof ownerId === 'string' && ownerId === file.repositoryOwnerId;
    conditions.push({
      claim: 'repository_owner_id',
      patterns: [file.repositoryOwnerId],
      value: typeof ownerId === 'string' ? ownerId : undefined,
      ok,
      why:
        describeAbsent('repository_owner_id', ownerId) ??
        `repository_owner_id ${quote(ownerId as string)} ${ok ? 'is' : 'is not'} ${quote(file.repositoryOwnerId)}`,
    });
  }

  const failed = conditions.find((c) => !c.ok);
  return failed === undefined ? { binds: true, conditions } : { binds: false, conditions, failure: failed.why };
}

function siteLabel(site: unknown): string {
  return typeof site === 'string' ? quote(site) : '(not a string)';
}

/** A site's `upstream:` comes from its site file, whichever file's rule grants the token. */
function upstreamOf(files: readonly PolicyFile[]): Upstream | undefined {
  // An indexed loop (like grantOf's): no closure, no iterator per grant.
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    if (f.kind === 'site' && f.upstream?.netlify) return f.upstream;
  }
  return undefined;
}

/** A grant as `evaluate` returns it, without the trace of every rule tried. */
export type Grant = Omit<Extract<Decision, { granted: true }>, 'trace'>;

/** Whether a file binds the token's issuer and repository: `bindingOf(file, claims).binds`, without the explanations. */
function binds(file: PolicyFile, claims: unknown): boolean {
  const iss = readClaim(claims, 'iss');
  if (typeof iss !== 'string' || !file.issuers.includes(iss)) return false;
  const repository = readClaim(claims, 'repository');
  if (typeof repository !== 'string' || !equalFoldingAscii(repository, file.repository)) return false;
  if (readClaim(claims, 'repository_id') !== file.repositoryId) return false;
  return file.repositoryOwnerId === undefined || readClaim(claims, 'repository_owner_id') === file.repositoryOwnerId;
}

/** Whether a rule matches: `evaluateRule(rule, claims).matched`, without the explanations. */
function matches(rule: Rule, claims: unknown): boolean {
  if (rule.context === 'production') {
    const event = readClaim(claims, 'event_name');
    if (typeof event !== 'string' || !isTrustedEvent(event)) return false;
  }
  for (let i = 0; i < rule.when.length; i++) {
    const condition = rule.when[i]!;
    const raw = readClaim(claims, condition.claim);
    if (typeof raw !== 'string' || raw === '' || !condition.test(raw)) return false;
  }
  return true;
}

/**
 * The grant `evaluate` would return, decided without writing a sentence for every condition: the token endpoint's
 * common path (a grant needs no explanation). Undefined whenever `evaluate` denies — then ask `evaluate`, which
 * explains the denial. Same files, same order, same checks (a property test holds the two equal); building the
 * traces of a grant cost more than the decision itself (BENCHMARKS.md, issue 14).
 */
export function grantOf(set: PolicySet, site: string, claims: Record<string, unknown>): Grant | undefined {
  const files = typeof site === 'string' ? set.forSite(site) : [];
  // Indexed loops: for speed, no array iterator per loop in this per-exchange path.
  for (let f = 0; f < files.length; f++) {
    const file = files[f]!;
    if (!binds(file, claims)) continue;
    for (let r = 0; r < file.rules.length; r++) {
      const rule = file.rules[r]!;
      if (!matches(rule, claims)) continue;
      return grantFrom(site, file, rule, files);
    }
  }
  return undefined;
}

export function evaluate(set: PolicySet, site: string, claims: Record<string, unknown>): Decision {
  const files = typeof site === 'string' ? set.forSite(site) : [];
  if (files.length === 0) {
    return {
      granted: false,
      site,
      reason: 'unknown_site',
      bound: false,
      trace: [],
      description: `site ${siteLabel(site)} is not known to this service`,
    };
  }

  const trace: RuleTrace[] = [];
  const tried: RuleTrace[] = [];
  let bound = false;
  for (const file of files) {
    const binding = bindingOf(file, claims);
    if (!binding.binds) {
      for (const rule of file.rules) {
        const t: RuleTrace = { file: file.file, issuer: file.issuer, rule: rule.name, context: rule.context, matched: false, conditions: binding.conditions };
        if (binding.failure !== undefined) t.failure = binding.failure;
        trace.push(t);
      }
      continue;
    }
    bound = true;
    for (const rule of file.rules) {
      const t = { ...evaluateRule(rule, claims, file.file), issuer: file.issuer };
      trace.push(t);
      tried.push(t);
      if (t.matched) {
        return { ...grantFrom(site, file, rule, files), trace };
      }
    }
  }

  if (!bound) {
    const repository = readClaim(claims, 'repository');
    const who = typeof repository === 'string' ? `repository ${quote(repository)}` : 'a token without a repository';
    return {
      granted: false,
      site,
      reason: 'repository_mismatch',
      bound: false,
      trace,
      description: `${who} may not deploy site ${siteLabel(site)}`,
    };
  }
  return {
    granted: false,
    site,
    reason: 'no_rule_matched',
    bound: true,
    trace,
    description:
      tried.length === 0
        ? `site ${siteLabel(site)}: the policy has no rules`
        : `site ${siteLabel(site)}: ${tried.map((t) => `rule ${quote(t.rule)}: ${t.failure ?? 'did not match'}`).join('; ')}`,
  };
}
