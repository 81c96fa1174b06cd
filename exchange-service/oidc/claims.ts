import { z } from 'zod';

/**
 * The claim set of a GitHub Actions OIDC token, validated after the signature.
 * Every claim the policy engine reads is a string: GitHub sends ids, run numbers and booleans as strings,
 * and a number, array or object where a string belongs is refused (type confusion is an attack, not a typo).
 * Optional claims are absent on some events (environment, base_ref, head_ref, repo_property_*).
 */
const str = z.string().min(1).max(1024);
const optStr = z.string().max(1024).optional();

export const githubClaimsSchema = z
  .object({
    iss: str,
    aud: str,
    sub: str,
    exp: z.number().int(),
    iat: z.number().int(),
    nbf: z.number().int(),
    jti: z.string().min(1).max(256),
    repository: str,
    repository_id: z.string().regex(/^[0-9]{1,20}$/),
    repository_owner: str,
    repository_owner_id: z.string().regex(/^[0-9]{1,20}$/),
    ref: str,
    event_name: str,
    run_id: str,
    run_attempt: str,
    sha: str,
    ref_type: optStr,
    ref_protected: optStr,
    environment: optStr,
    job_workflow_ref: optStr,
    job_workflow_sha: optStr,
    workflow_ref: optStr,
    workflow_sha: optStr,
    workflow: optStr,
    runner_environment: optStr,
    repository_visibility: optStr,
    base_ref: optStr,
    head_ref: optStr,
    actor: optStr,
    actor_id: optStr,
    run_number: optStr,
    enterprise: optStr,
    enterprise_id: optStr,
    environment_node_id: optStr,
  })
  .catchall(z.unknown())
  .superRefine((claims, ctx) => {
    for (const [key, value] of Object.entries(claims)) {
      if (key.startsWith('repo_property_') && typeof value !== 'string') {
        ctx.addIssue({ code: 'custom', path: [key], message: 'must be a string' });
      }
    }
  });

export type GitHubClaims = z.infer<typeof githubClaimsSchema>;

const REQUIRED_STRINGS = ['iss', 'aud', 'sub', 'repository', 'repository_owner', 'ref', 'event_name', 'run_id', 'run_attempt', 'sha'] as const;
const NUMERIC_ID = /^[0-9]{1,20}$/;
const SCHEMA_KEYS = new Set(Object.keys(githubClaimsSchema.shape));
const OPTIONAL_STRINGS = new Set(
  [...SCHEMA_KEYS].filter((name) => !(REQUIRED_STRINGS as readonly string[]).includes(name) && !['exp', 'iat', 'nbf', 'jti', 'repository_id', 'repository_owner_id'].includes(name)),
);
const isText = (value: unknown, min: number, max: number): boolean => typeof value === 'string' && value.length >= min && value.length <= max;

/**
 * The fast path of the claim check, run on every exchange: true only for a claim set that `githubClaimsSchema`
 * accepts as it is (a test holds the two together on generated claim sets). Written out because the schema costs
 * 6-10 µs per token; anything this refuses goes to the schema, which decides and explains.
 */
export function fitsGitHubClaims(claims: Record<string, unknown>): claims is GitHubClaims {
  for (const name of REQUIRED_STRINGS) if (!isText(claims[name], 1, 1024)) return false;
  if (!Number.isSafeInteger(claims.exp) || !Number.isSafeInteger(claims.iat) || !Number.isSafeInteger(claims.nbf)) return false;
  if (!isText(claims.jti, 1, 256)) return false;
  if (typeof claims.repository_id !== 'string' || !NUMERIC_ID.test(claims.repository_id)) return false;
  if (typeof claims.repository_owner_id !== 'string' || !NUMERIC_ID.test(claims.repository_owner_id)) return false;
  for (const name in claims) {
    if (!Object.prototype.hasOwnProperty.call(claims, name)) continue;
    const value = claims[name];
    if (SCHEMA_KEYS.has(name)) {
      // Every schema key not checked above is an optional string of at most 1024 characters.
      if (OPTIONAL_STRINGS.has(name) && value !== undefined && !isText(value, 0, 1024)) return false;
    } else if (name.startsWith('repo_property_') && typeof value !== 'string') {
      return false;
    } else if (name === '__proto__') {
      return false; // the schema's copy would treat it differently: let the schema decide
    }
  }
  return true;
}

/** Every claim name GitHub puts in an Actions OIDC token (`repo_property_<name>` claims come in addition). */
export const GITHUB_CLAIM_NAMES: readonly string[] = Object.keys(githubClaimsSchema.shape);

export function isGitHubClaimName(name: string): boolean {
  return GITHUB_CLAIM_NAMES.includes(name) || /^repo_property_[A-Za-z0-9_-]+$/.test(name);
}

/** The claims a policy `when` block may name. `repo_property_<name>` is accepted in addition. */
export const CONDITION_CLAIMS = [
  'ref',
  'ref_type',
  'ref_protected',
  'event_name',
  'environment',
  'job_workflow_ref',
  'workflow_ref',
  'runner_environment',
  'repository_visibility',
  'base_ref',
  'head_ref',
  'actor_id',
] as const;
export type ConditionClaim = (typeof CONDITION_CLAIMS)[number] | `repo_property_${string}`;

/** Events that may ever receive a production token. Every other event gets preview at most. */
export const TRUSTED_EVENTS = ['push', 'workflow_dispatch', 'schedule', 'release', 'merge_group'] as const;

export function isTrustedEvent(event: string | undefined): boolean {
  return event !== undefined && (TRUSTED_EVENTS as readonly string[]).includes(event);
}
