/**
 * The layering of exchange-service/, enforced: imports point down the layers, never back up, and no two folders
 * import each other (directly or round a longer loop). Imports are read with a regular expression over the .ts
 * sources — static `import … from`, `export … from`, side-effect `import '…'` and dynamic `import('…')`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SERVICE = join(ROOT, 'exchange-service');

/**
 * A unit is a folder of exchange-service/ or one of its top-level files. Lowest first; a unit may import units of
 * its own layer or below (without cycles), never above. A new folder must be placed here — deciding its layer is
 * part of adding it.
 */
const LAYERS: readonly (readonly string[])[] = [
  // Foundations: the closed sets of reasons and errors, clocks, counters, "did you mean", where the package is, PID files,
  // the client's address. (shared/ — the wire contract — is below all.)
  ['denial', 'errors', 'time', 'rate-limit', 'suggest', 'package-root', 'pid-file', 'json-names', 'client-ip'],
  // GitHub's tokens, the policy engine, what is kept, our token and its keys, and what reads the environment (the
  // options' names apart from their validation: `option-names`).
  // `credentials`: the platform credentials the deploy gateway holds; `verify`: our token for relying parties.
  ['oidc', 'policy', 'storage', 'access-token', 'keys', 'metrics', 'request-log', 'dev-issuer', 'option-names', 'config', 'credentials', 'verify'],
  // The RFC 8693 protocol: request, response, audit record.
  ['token-exchange'],
  // One exchange, start to end.
  ['exchange'],
  // The HTTP surface, and the deploy gateway (its own handler for /gateway/..., one module per platform).
  ['http', 'gateway'],
  // Wiring: the running service, the offline explanation, the offline check of a repository's workflows.
  ['service', 'explain', 'workflows'],
  // The command line.
  ['cli'],
];

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file, resolved to absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2] ?? m[3]!)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
}

function unitOf(file: string): string {
  const parts = relative(SERVICE, file).split(sep);
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

const within = (file: string, dir: string) => !relative(dir, file).startsWith('..');

/** unit → units it imports (its own excluded), with one example import for the failure message. */
function unitGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sources(SERVICE)) {
    const from = unitOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const target of importsOf(file)) {
      if (!within(target, SERVICE)) continue;
      const to = unitOf(target);
      if (to !== from && !graph.get(from)!.has(to)) graph.get(from)!.set(to, `${relative(ROOT, file)} imports ${relative(ROOT, target)}`);
    }
  }
  return graph;
}

function layerOf(unit: string): number {
  return LAYERS.findIndex((layer) => layer.includes(unit));
}

describe('the layering of exchange-service/', () => {
  const graph = unitGraph();

  it('places every folder and top-level file in a layer', () => {
    const unplaced = [...graph.keys()].filter((unit) => layerOf(unit) === -1);
    expect(unplaced, `add these to LAYERS in test/architecture.test.ts: ${unplaced.join(', ')}`).toEqual([]);
  });

  it('never imports from a higher layer', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const [to, example] of targets) {
        if (layerOf(to) > layerOf(from)) upward.push(`${from} (layer ${layerOf(from)}) → ${to} (layer ${layerOf(to)}): ${example}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const path: string[] = [];
    const visit = (unit: string): void => {
      state.set(unit, 'visiting');
      path.push(unit);
      for (const next of graph.get(unit)?.keys() ?? []) {
        if (state.get(next) === 'visiting') cycles.push([...path.slice(path.indexOf(next)), next].join(' → '));
        else if (!state.has(next)) visit(next);
      }
      path.pop();
      state.set(unit, 'done');
    };
    for (const unit of graph.keys()) if (!state.has(unit)) visit(unit);
    expect(cycles).toEqual([]);
  });

  it('sees the imports it checks (the parser is not blind)', () => {
    expect([...graph.get('exchange')!.keys()].sort()).toEqual(expect.arrayContaining(['access-token', 'oidc', 'policy', 'storage', 'token-exchange']));
    expect([...graph.get('keys')!.keys()]).toContain('storage');
    expect(graph.get('storage')!.has('keys')).toBe(false);
  });
});

describe('the packages of the repository', () => {
  const all = (dir: string) => sources(join(ROOT, dir)).flatMap((file) => importsOf(file).map((target) => ({ file: relative(ROOT, file), target: relative(ROOT, target) })));

  it('shared/ depends on nothing: the Action bundle inlines it and the service reads it', () => {
    const text = sources(join(ROOT, 'shared')).map((file) => readFileSync(file, 'utf8')).join('\n');
    expect([...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3])).toEqual([]);
  });

  it('the Action and the service share code only through shared/', () => {
    expect(all('action').filter(({ target }) => !target.startsWith('action') && !target.startsWith('shared'))).toEqual([]);
    expect(all('exchange-service').filter(({ target }) => !target.startsWith('exchange-service') && !target.startsWith('shared'))).toEqual([]);
  });

  it('the benchmark and the test harness never import the tests', () => {
    expect([...all('bench'), ...all('testing')].filter(({ target }) => target.startsWith(`test${sep}`))).toEqual([]);
  });
});
