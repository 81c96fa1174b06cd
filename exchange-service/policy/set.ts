/**
 * The loaded policy set: which files govern a site.
 *
 * A site's own file is found by slug in O(1); org files follow, in file-name order, when one of their `sites`
 * entries (a slug or a glob) matches. An org file never governs a site whose site file does not declare the same
 * `org:` — a glob like `app-*` in acme's org file must not reach into another organisation's site — and an org
 * file's repository must belong to its org (checked at load).
 * Names that are not slugs are governed by nothing (so a glob can never match a crafted name).
 */
import { anyGlobMatches, compileGlob, globIntersection, isGlob, type Glob } from './glob.js';
import { SLUG } from './schema.js';
import type { PolicyFile, PolicySet } from './types.js';

interface OrgEntry {
  file: PolicyFile;
  globs: Glob[];
}

export class DuplicateSiteError extends Error {
  readonly code = 'duplicate_site';
  constructor(readonly site: string) {
    super(`site ${JSON.stringify(site)} has more than one site file`);
    this.name = 'DuplicateSiteError';
  }
}

/**
 * True when the org file may govern a site with this site file (or none). Fails closed: a site that has its own site
 * file is governed by an org file only when the site file names that same org — a site file without `org:` belongs
 * to no org file, however broad its `sites` globs.
 */
export function orgFileMayGovern(orgFile: PolicyFile, siteFile: PolicyFile | undefined): boolean {
  if (siteFile === undefined) return true;
  return (
    siteFile.org !== undefined &&
    orgFile.org !== undefined &&
    siteFile.org.toLowerCase() === orgFile.org.toLowerCase() &&
    siteFile.issuer === orgFile.issuer
  );
}

const SLUG_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-';

/**
 * A slug both `sites` entries (slugs or globs) match, or undefined when there is none: decided exactly over the slug
 * language (lower-case letters, digits and -, starting with a letter or digit, 1 to 63 characters).
 */
export function siteOverlap(a: string, b: string): string | undefined {
  if (!isGlob(a) && !isGlob(b)) return a === b && SLUG.test(a) ? a : undefined;
  if (!isGlob(a) || !isGlob(b)) {
    const [slug, pattern] = isGlob(a) ? [b, a] : [a, b];
    return SLUG.test(slug) && compileGlob(pattern).test(slug) ? slug : undefined;
  }
  return globIntersection(a, b, { alphabet: SLUG_CHARS, firstAlphabet: SLUG_CHARS.slice(0, 36), nonEmpty: true, maxLength: 63 });
}

/** Build the set. Throws DuplicateSiteError when two site files name one site (the loader reports that first). */
export function createPolicySet(files: readonly PolicyFile[]): PolicySet {
  const frozen = Object.freeze([...files]);
  const bySite = new Map<string, PolicyFile>();
  const orgs: OrgEntry[] = [];
  const literal = new Set<string>();

  for (const file of frozen) {
    if (file.kind === 'site' && file.site !== undefined) {
      if (bySite.has(file.site)) throw new DuplicateSiteError(file.site);
      bySite.set(file.site, file);
      literal.add(file.site);
    } else if (file.kind === 'org') {
      const sites = file.sites ?? [];
      for (const s of sites) if (!isGlob(s)) literal.add(s);
      orgs.push({ file, globs: sites.map((s) => compileGlob(s)) });
    }
  }

  return {
    files: frozen,
    forSite(site: string): PolicyFile[] {
      if (typeof site !== 'string' || !SLUG.test(site)) return [];
      const own = bySite.get(site);
      const governing = own ? [own] : [];
      for (let i = 0; i < orgs.length; i++) {
        const org = orgs[i]!;
        if (anyGlobMatches(org.globs, site) && orgFileMayGovern(org.file, own)) governing.push(org.file);
      }
      return governing;
    },
    siteCount(): number {
      return literal.size;
    },
  };
}

