/**
 * The claims of the job's GitHub OIDC token, decoded WITHOUT verification and only for display in a denial:
 * the Action fetched this token itself, and shows the maintainer what it carried so they can compare it with
 * the policy. The token itself is never kept or printed.
 */
import { printable } from './printable.js';

/** The claims a trust policy is written against, in the order a maintainer reads them. */
export const DISPLAYED_CLAIMS = [
  'event_name',
  'ref',
  'job_workflow_ref',
  'workflow_ref',
  'environment',
  'repository',
  'repository_id',
  'aud',
] as const;

export type DisplayedClaim = (typeof DISPLAYED_CLAIMS)[number];
export type DisplayClaims = Partial<Record<DisplayedClaim, string>>;

const MAX_VALUE_LENGTH = 300;

function clean(value: unknown): string | undefined {
  if (typeof value === 'string') return printable(value, MAX_VALUE_LENGTH);
  if (Array.isArray(value)) {
    const parts = value.filter((v): v is string => typeof v === 'string');
    return parts.length > 0 ? clean(parts.join(', ')) : undefined;
  }
  return undefined;
}

/** Decodes the payload of a compact JWS; `undefined` when it is not one. */
export function decodeClaimsForDisplay(jwt: string): DisplayClaims | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const record = payload as Record<string, unknown>;
  const claims: DisplayClaims = {};
  for (const name of DISPLAYED_CLAIMS) {
    const value = clean(record[name]);
    if (value !== undefined) claims[name] = value;
  }
  return claims;
}

/** `  name: value` lines for every displayed claim, `(absent)` for the ones the token did not carry. */
export function formatClaims(claims: DisplayClaims): string[] {
  return DISPLAYED_CLAIMS.map((name) => {
    const value = claims[name];
    return `  ${name}: ${value === undefined ? '(absent)' : value === '' ? '(empty)' : value}`;
  });
}

/**
 * Every claim a trust policy can read (the repository binding and every `when` key), for the JSON copy in a denial
 * that `deploy-sts policy explain --claims -` takes. Kept in step with the service's CONDITION_CLAIMS by a test.
 */
export const POLICY_CLAIMS = [
  'repository',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'event_name',
  'ref',
  'ref_type',
  'ref_protected',
  'environment',
  'job_workflow_ref',
  'workflow_ref',
  'runner_environment',
  'repository_visibility',
  'base_ref',
  'head_ref',
  'actor_id',
  'aud',
] as const;

/** The policy claims of a compact JWS (and its `repo_property_*` claims), decoded for display; `undefined` when it is not one. */
export function decodePolicyClaims(jwt: string): Record<string, string> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const record = payload as Record<string, unknown>;
  const names = [...POLICY_CLAIMS, ...Object.keys(record).filter((k) => k.startsWith('repo_property_')).sort()];
  const claims: Record<string, string> = {};
  for (const name of names) {
    const value = clean(record[name]);
    if (value !== undefined) claims[name] = value;
  }
  return claims;
}
