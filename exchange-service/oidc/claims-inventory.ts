/**
 * Every claim GitHub documents for an Actions OIDC token, and what this service does with it. A claim GitHub adds
 * is then a decision — read it in a policy, record it, or ignore it on purpose — not a silent pass:
 * test/oidc/claims-inventory.test.ts fails for a claim the dev issuer (the one definition of GitHub's claim shape)
 * sends that is not listed here.
 *
 * Source: GitHub's "OpenID Connect reference" (OIDC token claims) and the issuer's `claims_supported`.
 */

export type ClaimUse =
  /** Checked by the verifier before anything else reads the token (oidc/verify-oidc.ts). */
  | 'verified'
  /** Read by the policy engine: the repository binding, or a `when` condition (policy/match.ts, CONDITION_CLAIMS). */
  | 'policy'
  /** Not decided on, but recorded: in the audit row or the minted token's `act` claim. */
  | 'recorded'
  /** Not read at all, on purpose (the reason says why). */
  | 'ignored';

export interface ClaimEntry {
  use: ClaimUse;
  why: string;
}

export const GITHUB_CLAIMS = {
  iss: { use: 'verified', why: 'must be a trusted issuer (DEPLOY_STS_ISSUER); selects the key source' },
  aud: { use: 'verified', why: "must be exactly this service's audience" },
  exp: { use: 'verified', why: 'expiry, with 60 s tolerance; also how long the jti is remembered' },
  iat: { use: 'verified', why: 'not in the future, at most 10 minutes old' },
  nbf: { use: 'verified', why: 'not before, with 60 s tolerance' },
  jti: { use: 'verified', why: 'accepted once (the replay cache); recorded as subject_jti' },
  sub: { use: 'ignored', why: 'a summary GitHub builds from other claims (customisable per repository); policies read the claims themselves' },
  repository: { use: 'policy', why: 'the repository a policy file binds (with its id)' },
  repository_id: { use: 'policy', why: 'binds the repository for good: a renamed or re-created repository has another id' },
  repository_owner: { use: 'ignored', why: 'a name that can change hands; repository_owner_id is what org files bind' },
  repository_owner_id: { use: 'policy', why: 'binds org files to their organisation' },
  repository_visibility: { use: 'policy', why: 'a when condition' },
  ref: { use: 'policy', why: 'a when condition; recorded' },
  ref_type: { use: 'policy', why: 'a when condition' },
  ref_protected: { use: 'policy', why: 'a when condition' },
  base_ref: { use: 'policy', why: 'a when condition (pull request events)' },
  head_ref: { use: 'policy', why: 'a when condition (pull request events)' },
  event_name: { use: 'policy', why: 'decides production or preview (trusted events); a when condition' },
  environment: { use: 'policy', why: 'a when condition; recorded' },
  job_workflow_ref: { use: 'policy', why: 'a when condition (the workflow file actually running, reusable ones included); recorded' },
  workflow_ref: { use: 'policy', why: 'a when condition; recorded when job_workflow_ref is absent' },
  runner_environment: { use: 'policy', why: 'a when condition (github-hosted or self-hosted)' },
  actor_id: { use: 'policy', why: 'a when condition (a numeric id cannot be renamed)' },
  actor: { use: 'ignored', why: 'a login that can be renamed and reused; actor_id is the condition' },
  run_id: { use: 'recorded', why: 'in the audit row and the act claim, to find the run' },
  run_attempt: { use: 'recorded', why: 'in the act claim' },
  sha: { use: 'recorded', why: 'in the act claim: the commit being deployed' },
  run_number: { use: 'ignored', why: 'run_id identifies the run' },
  workflow: { use: 'ignored', why: "the workflow's display name, which any commit can change; policies use workflow_ref" },
  workflow_sha: { use: 'ignored', why: 'the commit of the workflow file; policies pin the workflow by ref' },
  job_workflow_sha: { use: 'ignored', why: 'the commit of the job workflow file; policies pin the workflow by ref' },
  check_run_id: { use: 'ignored', why: 'identifies the job, which nothing here decides on' },
  enterprise: { use: 'ignored', why: 'a name; enterprise-wide trust is expressed by org files' },
  enterprise_id: { use: 'ignored', why: 'enterprise-wide trust is expressed by org files' },
  environment_node_id: { use: 'ignored', why: 'a GraphQL node id; environment is the condition' },
} as const satisfies Record<string, ClaimEntry>;

export type GitHubClaimName = keyof typeof GITHUB_CLAIMS;

/** Families of claims named by a prefix. */
export const GITHUB_CLAIM_PREFIXES = {
  repo_property_: { use: 'policy', why: "the repository's custom properties: a when condition (repo_property_<name>)" },
} as const satisfies Record<string, ClaimEntry>;

/** What the service does with a claim, or undefined for a claim nobody has decided on. */
export function claimUse(name: string): ClaimEntry | undefined {
  if (Object.hasOwn(GITHUB_CLAIMS, name)) return GITHUB_CLAIMS[name as GitHubClaimName];
  const prefix = Object.keys(GITHUB_CLAIM_PREFIXES).find((p) => name.startsWith(p)) as keyof typeof GITHUB_CLAIM_PREFIXES | undefined;
  return prefix ? GITHUB_CLAIM_PREFIXES[prefix] : undefined;
}
