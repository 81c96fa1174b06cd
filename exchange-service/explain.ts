/**
 * `deploy-sts policy explain`: verify a token offline (a JWKS file, the dev issuer's key, or the issuer's published
 * keys) and print, rule by rule and condition by condition, why the site's policy would grant or deny it.
 * When verification fails it says so first, then still explains the policy on the unverified claims (clearly marked).
 */
import { readFile } from 'node:fs/promises';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { DEV_ISSUER, devKeySource } from './dev-issuer.js';
import { OAuthError } from './errors.js';
import { isTrustedEvent } from './oidc/claims.js';
import { remoteKeySource, staticKeySource, type KeySource } from './oidc/jwks.js';
import { verifyGitHubToken } from './oidc/verify-oidc.js';
import { checkPolicies } from './policy/load.js';
import { evaluate } from './policy/match.js';
import { PolicyLoadError, type Decision } from './policy/types.js';

export interface ExplainOptions {
  site: string;
  tokenFile: string;
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
}

export interface Explanation {
  site: string;
  verified: boolean;
  verification: string;
  claims: Record<string, unknown>;
  decision: Decision;
}

export async function explain(options: ExplainOptions): Promise<Explanation> {
  let token: string;
  try {
    token = (await readFile(options.tokenFile, 'utf8')).trim();
  } catch (error) {
    throw new Error(`--token ${options.tokenFile}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); save the GitHub OIDC token of the run to explain into it`);
  }
  let claims: Record<string, unknown>;
  try {
    decodeProtectedHeader(token);
    claims = decodeJwt(token) as Record<string, unknown>;
  } catch {
    throw new Error(`${options.tokenFile} does not hold a JWT (three base64url parts separated by dots)`);
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
  const devIssuer = options.devIssuer || issuer === DEV_ISSUER;
  const loaded = await checkPolicies(options.policies, { issuers: options.issuers, ...(devIssuer ? { devIssuer: DEV_ISSUER } : {}) });
  if (!loaded.ok) throw new PolicyLoadError(loaded.problems);
  return { site: options.site, verified, verification, claims, decision: evaluate(loaded.set, options.site, claims) };
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
  lines.push(`token: issuer ${shown(c.iss)}, repository ${shown(c.repository)} (id ${shown(c.repository_id)}), event ${shown(c.event_name)}${isTrustedEvent(String(c.event_name)) ? '' : ' (untrusted: preview at most)'}, ref ${shown(c.ref)}`);
  lines.push(`       workflow ${shown(c.job_workflow_ref ?? c.workflow_ref)}, environment ${shown(c.environment)}`);
  lines.push(`${e.verification}`);
  if (!e.verified) lines.push('(the policy below is evaluated on the UNVERIFIED claims, for diagnosis only: the service would refuse this token)');
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
  // JSON escapes C0 controls itself; the rest become \uXXXX escapes too, which JSON reads back as the same characters.
  if (options.json) print(escapeTerminal(JSON.stringify(e, (_k, v) => (typeof v === 'function' ? undefined : v), 2)));
  else print(formatExplanation(e));
  return e.verified && e.decision.granted ? 0 : 1;
}
