/**
 * The example policies (`examples/policies`) bound to another issuer, for tests and benchmarks: the examples bind
 * GitHub's issuer (`issuer: https://token.actions.githubusercontent.com`), which a service trusting only a loopback
 * test issuer refuses at load. The copy replaces that binding with the given issuer URL.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The package root: the nearest directory up with a package.json (this file runs from source and from build/). */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const EXAMPLE_POLICIES = join(packageRoot(import.meta.dirname), 'examples', 'policies');

/** GitHub's issuer, which the example policies bind. */
export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/** Copy the example policies into `dir` (created if missing), bound to `issuer`; returns `dir`. */
export function writeExamplePolicies(issuer: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(EXAMPLE_POLICIES)) {
    const text = readFileSync(join(EXAMPLE_POLICIES, name), 'utf8');
    writeFileSync(join(dir, name), text.replaceAll(`issuer: ${GITHUB_ISSUER}`, `issuer: ${issuer}`));
  }
  return dir;
}
