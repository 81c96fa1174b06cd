/**
 * The docs hold together: every relative link and #anchor in README.md and docs/*.md (and SECURITY.md, BENCHMARKS.md)
 * names a file that exists and, for a Markdown target, a heading it has — by GitHub's anchor rules: lower-case, drop
 * punctuation but `-` and `_`, spaces become `-`, a repeated heading gets `-1`, `-2`, ….
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/service.js';

const DOCS = ['README.md', 'SECURITY.md', 'BENCHMARKS.md', ...readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)];

/** The file's lines, with fenced code blocks blanked (their `#` lines are no headings, their brackets no links). */
function prose(file: string): string[] {
  let fenced = false;
  return readFileSync(join(ROOT, file), 'utf8').split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

function slug(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\p{M}_\- ]/gu, '').replaceAll(' ', '-');
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of prose(file)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    found.add(n === 0 ? s : `${s}-${n}`);
  }
  return found;
}

interface Link { file: string; line: number; target: string }

function links(file: string): Link[] {
  return prose(file).flatMap((text, i) =>
    [...text.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => ({ file, line: i + 1, target: m[1]! }))
      .filter((l) => !/^[a-z][a-z+.-]*:/i.test(l.target)),
  );
}

describe('GitHub anchors', () => {
  it('are the heading, lower-cased, without punctuation, spaces as dashes', () => {
    expect(slug('Deploy to Netlify without a Netlify token in GitHub')).toBe('deploy-to-netlify-without-a-netlify-token-in-github');
    expect(slug('`POST /token` — RFC 8693 token exchange')).toBe('post-token--rfc-8693-token-exchange');
    expect(slug('With `pull_request_target`')).toBe('with-pull_request_target');
  });
});

describe('links in the docs', () => {
  const all = DOCS.flatMap(links);

  it('are there, between the README and every page of docs/', () => {
    for (const page of DOCS.filter((d) => d.startsWith('docs/'))) {
      expect(links('README.md').some((l) => l.target.split('#')[0] === page), `README.md links ${page}`).toBe(true);
    }
    expect(all.filter((l) => l.file.startsWith('docs/') && l.target.startsWith('../README.md#')).length).toBeGreaterThan(0);
  });

  it('each resolve to a file that exists and a heading it has', () => {
    const broken = all.filter((l) => {
      const [path, anchor] = l.target.split('#') as [string, string | undefined];
      const target = path ? normalize(join(dirname(l.file), decodeURI(path))) : l.file;
      if (!existsSync(join(ROOT, target))) return true;
      return anchor !== undefined && target.endsWith('.md') && !anchors(target).has(anchor);
    });
    expect(broken.map((l) => `${l.file}:${l.line} ${l.target}`)).toEqual([]);
  });
});
