import { describe, expect, it } from 'vitest';
import { PERMISSIONS, implies, isPermission, parseScope, resolveScope } from '../../exchange-service/policy/permissions.js';

describe('the permission vocabulary', () => {
  it('is resource:action over sites, deployments and the reserved resources', () => {
    expect(PERMISSIONS).toEqual([
      'analytics:read',
      'analytics:write',
      'deployments:read',
      'deployments:write',
      'domains:read',
      'domains:write',
      'forms:read',
      'forms:write',
      'sites:read',
    ]);
    expect(isPermission('sites:write')).toBe(false);
    expect(isPermission('deployments:admin')).toBe(false);
  });

  it('lets write imply read on the same resource only', () => {
    expect(implies('deployments:write', 'deployments:read')).toBe(true);
    expect(implies('deployments:read', 'deployments:write')).toBe(false);
    expect(implies('deployments:write', 'sites:read')).toBe(false);
    expect(implies('domains:write', 'deployments:read')).toBe(false);
  });
});

describe('parseScope', () => {
  it('reads space-separated permissions', () => {
    expect(parseScope('deployments:write sites:read')).toEqual({ ok: true, permissions: ['deployments:write', 'sites:read'] });
  });

  it('treats an absent or blank scope as no request', () => {
    expect(parseScope(undefined)).toEqual({ ok: true, permissions: [] });
    expect(parseScope('')).toEqual({ ok: true, permissions: [] });
    expect(parseScope('   ')).toEqual({ ok: true, permissions: [] });
  });

  it('refuses malformed scopes with a message', () => {
    expect(parseScope('deployments')).toEqual({
      ok: false,
      description: 'scope "deployments" is malformed: a permission is resource:action, e.g. deployments:write',
    });
    expect(parseScope('deployments:write,sites:read').ok).toBe(false);
    expect(parseScope('deployments:write\tsites:read').ok).toBe(false);
  });

  it('refuses unknown permissions, listing the known ones', () => {
    const result = parseScope('deployments:delete');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.description).toMatch(/^scope "deployments:delete" is not a known permission \(known: analytics:read, .*sites:read\)$/);
  });

  it('refuses an over-long scope', () => {
    expect(parseScope('sites:read '.repeat(200)).ok).toBe(false);
  });
});

describe('resolveScope', () => {
  it('grants everything the rule grants when nothing is requested, normalised', () => {
    expect(resolveScope(undefined, ['sites:read', 'deployments:write', 'sites:read'])).toEqual({ ok: true, scope: 'deployments:write sites:read' });
    expect(resolveScope('', ['deployments:write'])).toEqual({ ok: true, scope: 'deployments:write' });
  });

  it('grants a requested subset, sorted and de-duplicated', () => {
    expect(resolveScope('sites:read deployments:write sites:read', ['deployments:write', 'sites:read', 'forms:write'])).toEqual({
      ok: true,
      scope: 'deployments:write sites:read',
    });
  });

  it('counts a read as within a write grant', () => {
    expect(resolveScope('deployments:read', ['deployments:write'])).toEqual({ ok: true, scope: 'deployments:read' });
  });

  it('refuses a write when only read is granted', () => {
    expect(resolveScope('deployments:write', ['deployments:read'])).toEqual({
      ok: false,
      description: 'requested scope "deployments:write" is not within the granted permissions "deployments:read"',
    });
  });

  it('refuses permissions on another resource', () => {
    const result = resolveScope('deployments:read domains:write', ['deployments:write']);
    expect(result).toEqual({ ok: false, description: 'requested scope "domains:write" is not within the granted permissions "deployments:write"' });
  });

  it('refuses a malformed request before comparing', () => {
    expect(resolveScope('admin', ['deployments:write']).ok).toBe(false);
  });
});
