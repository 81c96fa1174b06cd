import type { ConditionClaim } from '../oidc/claims.js';
import type { DenialReason } from '../denial.js';
import type { Upstream } from './upstream.js';

export type Context = 'production' | 'preview';

/** `resource:action`, write implies read. */
export type Permission = string;

/** One `when` key: the claim it reads and the patterns (any of) it accepts. */
export interface Condition {
  claim: ConditionClaim;
  /** The values as written in the policy (exact strings or globs), for explanations. */
  patterns: string[];
  /** Compiled matcher: true when the claim value matches any pattern. An absent claim never matches. */
  test(value: string | undefined): boolean;
}

export interface Rule {
  name: string;
  context: Context;
  permissions: Permission[];
  /** Seconds. Default 600, hard cap 3600. */
  maxTtl: number;
  when: Condition[];
}

/** A loaded policy file: a site file (`site:`) or an org file (`org:` + `sites:`). */
export interface PolicyFile {
  /** Path of the YAML file, relative to the policies directory. */
  file: string;
  kind: 'site' | 'org';
  /** Site file: the one slug. */
  site?: string;
  /** Org file: slugs or globs. */
  sites?: string[];
  org?: string;
  /** The OIDC issuer the file binds (its `issuer:`, or the service's only trusted issuer). */
  issuer: string;
  /** Issuers whose tokens the file accepts: `issuer`, and the local dev issuer standing in for GitHub's in demos. */
  issuers: readonly string[];
  /** owner/name as written; compared case-insensitively. */
  repository: string;
  repositoryId: string;
  repositoryOwnerId?: string;
  /** Overrides DEPLOY_STS_TOKEN_AUDIENCE for tokens minted under this file. */
  tokenAudience?: string;
  /** Site files only: where the deploy gateway forwards this site's deploys (`upstream:`). */
  upstream?: Upstream;
  rules: Rule[];
}

/** How one rule fared against a token: the first condition that failed, or none. */
export interface RuleTrace {
  file: string;
  /** The issuer the rule's file binds. */
  issuer?: string;
  rule: string;
  context: Context;
  matched: boolean;
  /** Every condition in order with its outcome (policy explain prints all of them). */
  conditions: { claim: string; patterns: string[]; value: string | undefined; ok: boolean; why: string }[];
  /** The first failure, phrased for a human, e.g. `ref "refs/heads/feature" is not one of ["refs/heads/main"]`. */
  failure?: string;
}

export type Decision =
  | {
      granted: true;
      site: string;
      org?: string;
      file: string;
      /** The issuer the granting file binds. */
      issuer: string;
      rule: Rule;
      context: Context;
      tokenAudience?: string;
      /** The site file's `upstream:`, when the site deploys through the gateway. */
      upstream?: Upstream;
      trace: RuleTrace[];
    }
  | {
      granted: false;
      site: string;
      /** unknown_site: no policy names the site. repository_mismatch: the token's repository is not bound to it.
       *  no_rule_matched: bound, but every rule failed a condition. */
      reason: Extract<DenialReason, 'unknown_site' | 'repository_mismatch' | 'no_rule_matched'>;
      /** True when the token's repository (by id) is the one the site is bound to: only then may details be shown. */
      bound: boolean;
      trace: RuleTrace[];
      /** The error_description for the client: detailed when bound, generic otherwise. */
      description: string;
    };

export interface PolicyProblem {
  file: string;
  /** 1-based; 0 when the problem concerns the file or directory as a whole (no position). */
  line: number;
  /** 1-based; 0 with line 0. */
  column: number;
  message: string;
}

/** `file:line:column: message`, or `file: message` for problems without a position. */
export function formatPolicyProblem(p: PolicyProblem): string {
  return p.line > 0 ? `${p.file}:${p.line}:${p.column}: ${p.message}` : `${p.file}: ${p.message}`;
}

export class PolicyLoadError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(problems.map(formatPolicyProblem).join('\n'));
    this.name = 'PolicyLoadError';
  }
}

/** The loaded, validated set of policies. Site lookup is O(1) for site files. */
export interface PolicySet {
  readonly files: readonly PolicyFile[];
  /** Files that govern a site: its site file first, then org files whose `sites` match, in file-name order. */
  forSite(site: string): PolicyFile[];
  /** Every slug named literally by a site or org file (for start-up summaries). */
  siteCount(): number;
}
