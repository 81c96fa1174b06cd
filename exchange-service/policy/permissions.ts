/**
 * The permission vocabulary, `resource:action`, and OAuth scope handling.
 * `write` implies `read` on the same resource. A requested scope must lie within what the matched rule grants.
 */
import { PERMISSION } from '../../shared/wire.js';
import type { Permission } from './types.js';

/** The actions each resource supports. `sites` is read-only; the rest have room for `write`. */
export const RESOURCE_ACTIONS: Readonly<Record<string, readonly ('read' | 'write')[]>> = Object.freeze({
  sites: ['read'],
  deployments: ['read', 'write'],
  domains: ['read', 'write'],
  forms: ['read', 'write'],
  analytics: ['read', 'write'],
});

/** Every permission a policy may grant or a client may request, sorted. */
export const PERMISSIONS: readonly Permission[] = Object.freeze(
  Object.entries(RESOURCE_ACTIONS)
    .flatMap(([resource, actions]) => actions.map((action) => `${resource}:${action}`))
    .sort(),
);

/** Longest scope parameter accepted (the full vocabulary is far shorter). */
export const MAX_SCOPE_LENGTH = 1024;

const SHAPE = PERMISSION;

export function isPermission(value: unknown): value is Permission {
  return typeof value === 'string' && PERMISSIONS.includes(value);
}

/** Why a string is not a permission, or undefined when it is one. */
export function permissionProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'a permission must be a string like deployments:write';
  if (isPermission(value)) return undefined;
  if (!SHAPE.test(value)) {
    return `${JSON.stringify(value)} is malformed: a permission is resource:action, e.g. deployments:write`;
  }
  return `${JSON.stringify(value)} is not a known permission (known: ${PERMISSIONS.join(', ')})`;
}

/** True when holding `granted` allows `requested`: the same permission, or write on the resource for a read. */
export function implies(granted: Permission, requested: Permission): boolean {
  if (granted === requested) return true;
  const [gResource, gAction] = granted.split(':');
  const [rResource, rAction] = requested.split(':');
  return gResource === rResource && gAction === 'write' && rAction === 'read';
}

/** Sorted, de-duplicated, space-separated. */
export function normaliseScope(permissions: readonly Permission[]): string {
  // One permission (most rules grant deployments:write alone) is its own normal form: no Set, array and join per
  // exchange for it.
  if (permissions.length === 1) return permissions[0]!;
  return [...new Set(permissions)].sort().join(' ');
}

export type ScopeParse = { ok: true; permissions: Permission[] } | { ok: false; description: string };

/** Parse an RFC 6749 scope parameter: permissions separated by spaces. Undefined or blank → no permissions. */
export function parseScope(scope: string | undefined): ScopeParse {
  if (scope === undefined) return { ok: true, permissions: [] };
  if (typeof scope !== 'string') return { ok: false, description: 'scope must be a string' };
  if (scope.length > MAX_SCOPE_LENGTH) {
    return { ok: false, description: `scope is longer than ${MAX_SCOPE_LENGTH} characters` };
  }
  const tokens = scope.split(' ').filter((t) => t !== '');
  const permissions: Permission[] = [];
  for (const token of tokens) {
    const problem = permissionProblem(token);
    if (problem !== undefined) return { ok: false, description: `scope ${problem}` };
    permissions.push(token);
  }
  return { ok: true, permissions };
}

export type ScopeResolution = { ok: true; scope: string } | { ok: false; description: string };

/**
 * The scope to mint: everything granted when nothing (or a blank scope) is requested; otherwise the request,
 * provided each requested permission is implied by a granted one. The result is normalised.
 */
export function resolveScope(requested: string | undefined, granted: readonly Permission[]): ScopeResolution {
  const parsed = parseScope(requested);
  if (!parsed.ok) return parsed;
  const grant = normaliseScope(granted);
  if (parsed.permissions.length === 0) {
    if (granted.length === 0) return { ok: false, description: 'the matched rule grants no permissions' };
    return { ok: true, scope: grant };
  }
  const outside = parsed.permissions.filter((p) => !granted.some((g) => implies(g, p)));
  if (outside.length > 0) {
    return {
      ok: false,
      description: `requested scope ${JSON.stringify(normaliseScope(outside))} is not within the granted permissions ${JSON.stringify(grant)}`,
    };
  }
  return { ok: true, scope: normaliseScope(parsed.permissions) };
}
