/**
 * `deploy-sts policy explain`: print, rule by rule and condition by condition, why the site's policy would grant or
 * deny a run. The run is given as
 * - `--token FILE`: a GitHub OIDC token, verified offline first (a JWKS file, the dev issuer's key, or the issuer's
 *   published keys); when verification fails it says so, then still explains the policy on the unverified claims;
 * - `--claims FILE|-`: the claims as JSON, as the Action prints them on a denial (nothing to verify: no token);
 * - `--audit-id N`: a decision recorded in the audit log, explained with the claims the audit row keeps.
 * Claims the site's policy reads but the input lacks are named: conditions on them fail as absent.
 */
import { readFile } from 'node:fs/promises';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { DEV_ISSUER, devKeySource } from './dev-issuer.js';
import { OAuthError } from './errors.js';
import { GITHUB_CLAIM_NAMES, isGitHubClaimName, isTrustedEvent } from './oidc/claims.js';
import { remoteKeySource, staticKeySource, type KeySource } from './oidc/jwks.js';
import { verifyGitHubToken } from './oidc/verify-oidc.js';
import { checkPolicyPath } from './policy/load.js';
import { evaluate } from './policy/match.js';
import { PolicyLoadError, type Decision, type PolicySet } from './policy/types.js';
import type { StoredAudit } from './storage/types.js';
import { snakeCase } from './json-names.js';
import { didYouMean } from './suggest.js';

export interface ExplainOptions {
  site: string;
  /** A file holding a GitHub OIDC token. */
  tokenFile?: string | undefined;
  /** A file (or `-`: standard input) holding the claims as JSON. */
  claimsFile?: string | undefined;
  /** A recorded decision (`--audit-id`), read by the caller from the audit log. */
  audit?: StoredAudit | undefined;
  jwksFile: string | undefined;
  /** Unix seconds to check the token's times against (default now). */
  at: number | undefined;
  policies: string;
  /** The audience expected; default: whatever the token carries (audience is then not checked). */
  audience: string | undefined;
  dataDir: string;
  /** DEPLOY_STS_ISSUER: the policies are loaded for these, as the service loads them. */
  issuers: string[];
  /** DEPLOY_STS_DEV_ISSUER=1. A token from the dev issuer turns it on too (it is verified with the local dev key). */
  devIssuer: boolean;
  json: boolean;
  /** Standard input, for `--claims -`. */
  readStdin?: () => Promise<string>;
}

export interface Explanation {
  site: string;
  /** What was explained: a token, claims given as JSON, or an audit record. */
  source: 'token' | 'claims' | 'audit';
  verified: boolean;
  verification: string;
  claims: Record<string, unknown>;
  /** Claims the site's policy reads that the input did not carry (conditions on them fail as absent). */
  unavailable_claims: string[];
  /** Remarks on the input: unknown claim names, an audience that differs, what the audit row recorded. */
  notes: string[];
  decision: Decision;
}

/** The claims the policies of `site` read: the repository binding of each file, and every rule's conditions. */
export function claimsReadBy(set: PolicySet, site: string): string[] {
  const names = new Set<string>();
  for (const file of set.forSite(site)) {
    names.add('repository');
    names.add('repository_id');
    if (file.repositoryOwnerId !== undefined) names.add('repository_owner_id');
    for (const rule of file.rules) {
      if (rule.context === 'production') names.add('event_name');
      for (const condition of rule.when) names.add(condition.claim);
    }
  }
  return [...names];
}

/** The policies as the service loads them: for its issuers (and the dev issuer when trusted, or when the token is its). */
async function loadSet(options: ExplainOptions, devToken = false): Promise<PolicySet> {
  const devIssuer = options.devIssuer || devToken;
  const loaded = await checkPolicyPath(options.policies, { issuers: options.issuers, ...(devIssuer ? { devIssuer: DEV_ISSUER } : {}) });
  if (!loaded.ok) throw new PolicyLoadError(loaded.problems);
  return loaded.set;
}

async function readStandardInput(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Parse the claims JSON: an object of claim names to strings (GitHub sends every claim as a string; `exp`, `iat` and
 * `nbf` may be numbers). Text around the object is ignored, so a pasted log line works too.
 */
export function parseClaims(text: string, from: string): { claims: Record<string, unknown>; notes: string[] } {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  let parsed: unknown;
  try {
    if (start === -1 || end < start) throw new Error('no JSON object');
    parsed = JSON.parse(text.slice(start, end + 1));
  } catch (error) {
    throw new Error(`--claims ${from}: not a JSON object of claims (${(error as Error).message}); give the JSON the Action printed with the denial, e.g. {"repository":"acme/docs","repository_id":"892043217","event_name":"push","ref":"refs/heads/main"}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`--claims ${from}: expected a JSON object of claims, got ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  const claims = parsed as Record<string, unknown>;
  const notes: string[] = [];
  for (const [name, value] of Object.entries(claims)) {
    if (['exp', 'iat', 'nbf'].includes(name) && typeof value === 'number') continue;
    if (typeof value !== 'string') {
      throw new Error(`--claims ${from}: claim ${JSON.stringify(name)} must be a string, as GitHub sends it (got ${JSON.stringify(value)})`);
    }
    if (!isGitHubClaimName(name)) {
      notes.push(`claim ${JSON.stringify(name)} is not one GitHub sends${didYouMean(name, GITHUB_CLAIM_NAMES)}; no policy condition reads it`);
    }
  }
  return { claims, notes };
}

/** The claims an audit row keeps, as GitHub named them. */
export function claimsOfAudit(row: StoredAudit): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  const set = (name: string, value: string | null) => {
    if (value !== null) claims[name] = value;
  };
  set('repository', row.repository);
  set('repository_id', row.repositoryId);
  set('event_name', row.eventName);
  set('ref', row.ref);
  // The audit row keeps one workflow reference: job_workflow_ref, or workflow_ref for a token without one.
  set('job_workflow_ref', row.workflowRef);
  set('environment', row.environment);
  return claims;
}

/** For a site no policy names: the closest slug the policies do name. */
function siteNotes(set: PolicySet, site: string, policies: string): string[] {
  if (set.forSite(site).length > 0) return [];
  const slugs = set.files.flatMap((f) => (f.kind === 'site' ? [f.site ?? ''] : (f.sites ?? []))).filter(Boolean);
  return [`no policy in ${policies} names site ${JSON.stringify(site)}${didYouMean(site, slugs)}`];
}

/**
 * Claims given as JSON and audit records carry no `iss`: they are explained as a token from the issuer the site's
 * policy binds (when it binds exactly one), and a note says so. A token's own `iss` is never replaced.
 */
function assumeIssuer(set: PolicySet, site: string, claims: Record<string, unknown>, from: string): string[] {
  if (claims.iss !== undefined && claims.iss !== null) return [];
  const bound = [...new Set(set.forSite(site).map((f) => f.issuer))];
  if (bound.length !== 1) return [];
  claims.iss = bound[0];
  return [`${from} carry no iss: explained as a token from ${JSON.stringify(bound[0])}, the issuer the policy of site ${JSON.stringify(site)} binds`];
}

function unavailable(set: PolicySet, site: string, claims: Record<string, unknown>): string[] {
  return claimsReadBy(set, site).filter((name) => claims[name] === undefined || claims[name] === null);
}

export async function explain(options: ExplainOptions): Promise<Explanation> {
  const given = [options.tokenFile, options.claimsFile, options.audit].filter((x) => x !== undefined).length;
  if (given !== 1) throw new Error('policy explain needs exactly one of --token FILE, --claims FILE|- or --audit-id N');
  if (options.claimsFile !== undefined) return explainClaims(options, options.claimsFile);
  if (options.audit !== undefined) return explainAudit(options, options.audit);
  return explainToken(options, options.tokenFile!);
}

async function explainClaims(options: ExplainOptions, file: string): Promise<Explanation> {
  let text: string;
  try {
    text = file === '-' ? await (options.readStdin ?? readStandardInput)() : await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`--claims ${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const { claims, notes } = parseClaims(text, file === '-' ? '- (standard input)' : file);
  if (options.audience !== undefined && typeof claims.aud === 'string' && claims.aud !== options.audience) {
    notes.push(`aud ${JSON.stringify(claims.aud)} is not the audience ${JSON.stringify(options.audience)}: the service would refuse such a token (bad_audience) before its policy`);
  }
  const set = await loadSet(options);
  notes.push(...assumeIssuer(set, options.site, claims, 'the claims given'));
  return {
    site: options.site,
    source: 'claims',
    verified: false,
    verification: 'claims given as JSON (--claims): there is no token, so no signature, issuer or time was checked',
    claims,
    unavailable_claims: unavailable(set, options.site, claims),
    notes: [...notes, ...siteNotes(set, options.site, options.policies)],
    decision: evaluate(set, options.site, claims),
  };
}

async function explainAudit(options: ExplainOptions, row: StoredAudit): Promise<Explanation> {
  const site = options.site || row.site || '';
  const claims = claimsOfAudit(row);
  const when = new Date(row.time * 1000).toISOString();
  const notes = [
    `audit record ${row.id} (${when}): ${row.result}${row.site ? ` for site "${row.site}"` : ''}, reason ${row.reason}${row.rule ? `, rule "${row.rule}"` : ''}${row.result === 'denied' ? `: ${row.detail}` : ''}`,
    'the audit log keeps repository, repository_id, event_name, ref, environment and one workflow reference (job_workflow_ref, or workflow_ref when the token had none); the explanation below uses the policies as they are now',
  ];
  if (row.repository === null) {
    notes.push(`the request was refused before its token's claims were verified (${row.reason}), so the record holds no claims: there is nothing to judge against the policy; fix the cause the reason names first`);
  }
  const set = await loadSet(options);
  if (row.repository !== null) notes.push(...assumeIssuer(set, site, claims, 'audit records'));
  const decision = evaluate(set, site, claims);
  const recordedGrant = row.result === 'granted';
  if (row.repository !== null && decision.granted !== recordedGrant && ['granted', 'no_rule_matched', 'repository_mismatch', 'unknown_site'].includes(row.reason)) {
    notes.push(`the policies now ${decision.granted ? 'grant' : 'deny'} what was ${recordedGrant ? 'granted' : 'denied'} then (or a claim the audit log does not keep decided it)`);
  }
  return {
    site,
    source: 'audit',
    verified: row.repository !== null,
    verification:
      row.repository !== null
        ? `claims from audit record ${row.id}: the service verified the token's signature, issuer, audience and times when it recorded them`
        : `audit record ${row.id} holds no verified claims`,
    claims,
    unavailable_claims: unavailable(set, site, claims),
    notes: [...notes, ...siteNotes(set, site, options.policies)],
    decision,
  };
}

async function explainToken(options: ExplainOptions, tokenFile: string): Promise<Explanation> {
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (error) {
    throw new Error(`--token ${tokenFile}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); save the GitHub OIDC token of the run to explain into it`);
  }
  let claims: Record<string, unknown>;
  try {
    decodeProtectedHeader(token);
    claims = decodeJwt(token) as Record<string, unknown>;
  } catch {
    throw new Error(`${tokenFile} does not hold a JWT (three base64url parts separated by dots)`);
  }
  const issuer = String(claims.iss ?? '');
  let source: KeySource | undefined;
  if (options.jwksFile) source = await staticKeySource(issuer, options.jwksFile);
  else if (issuer === DEV_ISSUER) source = await devKeySource(options.dataDir);
  else if (options.issuers.includes(issuer)) source = remoteKeySource(issuer);

  let verified = false;
  let verification: string;
  if (!source) {
    verification = `not verified: issuer ${JSON.stringify(issuer)} is not trusted (DEPLOY_STS_ISSUER) and no --jwks file was given`;
  } else {
    try {
      const audience = options.audience ?? String(claims.aud ?? '');
      const at = options.at;
      claims = await verifyGitHubToken(token, { issuers: new Map([[issuer, source]]), audience, ...(at ? { now: () => at } : {}) });
      verified = true;
      verification = `verified: signature (kid ${decodeProtectedHeader(token).kid}), issuer, audience ${JSON.stringify(audience)}, times${at ? ` at ${new Date(at * 1000).toISOString()}` : ''}`;
    } catch (error) {
      verification = `NOT verified: ${error instanceof OAuthError ? error.description : (error as Error).message}`;
    }
  }
  const set = await loadSet(options, issuer === DEV_ISSUER);
  return {
    site: options.site,
    source: 'token',
    verified,
    verification,
    claims,
    unavailable_claims: unavailable(set, options.site, claims),
    notes: siteNotes(set, options.site, options.policies),
    decision: evaluate(set, options.site, claims),
  };
}

/**
 * Characters a terminal may act on, or that hide or reorder text: C0 controls (ESC, BEL, CR …), DEL, C1 controls
 * (CSI is U+009B), zero-width and bidi formatting characters, and the Unicode line separators. Claims printed here may
 * come from a token nobody verified: they are shown as \uXXXX escapes instead.
 */
const TERMINAL_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** Text safe for a terminal: every unsafe character as a \uXXXX escape (newlines between lines are kept). */
export function escapeTerminal(text: string): string {
  return text.replace(TERMINAL_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A claim value as printed: strings quoted (JSON), anything else as JSON, absent as (none). */
function shown(value: unknown): string {
  if (value === undefined || value === null) return '(none)';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function formatExplanation(e: Explanation): string {
  const c = e.claims;
  const lines: string[] = [];
  lines.push(`${e.source === 'token' ? 'token' : 'run  '}: issuer ${shown(c.iss)}, repository ${shown(c.repository)} (id ${shown(c.repository_id)}), event ${shown(c.event_name)}${isTrustedEvent(String(c.event_name)) ? '' : ' (untrusted: preview at most)'}, ref ${shown(c.ref)}`);
  lines.push(`       workflow ${shown(c.job_workflow_ref ?? c.workflow_ref)}, environment ${shown(c.environment)}`);
  lines.push(`${e.verification}`);
  for (const note of e.notes) lines.push(`note: ${note}`);
  if (e.unavailable_claims.length > 0) {
    lines.push(`unavailable: ${e.unavailable_claims.join(', ')} — the site's policy reads ${e.unavailable_claims.length === 1 ? 'this claim' : 'these claims'}, but the ${e.source === 'audit' ? 'audit record does not keep' : e.source === 'claims' ? 'claims given do not include' : 'token does not carry'} ${e.unavailable_claims.length === 1 ? 'it' : 'them'}: conditions on ${e.unavailable_claims.length === 1 ? 'it' : 'them'} fail below as absent`);
  }
  if (e.source === 'token' && !e.verified) lines.push('(the policy below is evaluated on the UNVERIFIED claims, for diagnosis only: the service would refuse this token)');
  lines.push(`site ${shown(e.site)}:`);
  const d = e.decision;
  if (!d.granted && d.trace.length === 0) lines.push(`  ${d.description}`);
  let file: string | undefined;
  for (const t of d.trace) {
    if (t.file !== file) {
      file = t.file;
      lines.push(`  policy ${t.file}: binds issuer ${JSON.stringify(t.issuer ?? '')}`);
    }
    lines.push(`  rule "${t.rule}" (${t.context}, ${t.file}): ${t.matched ? 'MATCHES' : 'does not match'}`);
    for (const cond of t.conditions) lines.push(`    ${cond.ok ? '✓' : '✗'} ${cond.why}`);
    if (!t.matched && t.failure && t.conditions.every((x) => x.ok)) lines.push(`    ✗ ${t.failure}`);
  }
  if (d.granted) {
    lines.push(`result: GRANTED by rule "${d.rule.name}": ${d.context}, permissions ${d.rule.permissions.join(' ')}, ttl ${d.rule.maxTtl}s${e.verified ? '' : ' — but the token itself is not valid'}`);
  } else {
    lines.push(`result: DENIED (${d.reason}): ${d.description}`);
  }
  return escapeTerminal(lines.join('\n'));
}

export async function explainCommand(options: ExplainOptions, print: (text: string) => void): Promise<number> {
  const e = await explain(options);
  // snake_case field names, as the HTTP API; the claims keep GitHub's own names (repo_property_<name> included).
  // JSON escapes C0 controls itself; the rest become \uXXXX escapes too, which JSON reads back as the same characters.
  const { claims, ...rest } = e;
  if (options.json) print(escapeTerminal(JSON.stringify({ ...(snakeCase(rest) as object), claims }, (_k, v) => (typeof v === 'function' ? undefined : v), 2)));
  else print(formatExplanation(e));
  // Claims given as JSON have nothing to verify; a token or an audit record must have verified.
  return (e.verified || e.source === 'claims') && e.decision.granted ? 0 : 1;
}
