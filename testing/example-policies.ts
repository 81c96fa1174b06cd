/**
 * The example policies (`examples/policies`) bound to another issuer, for tests and benchmarks: the examples bind
 * GitHub's issuer (`issuer: https://token.actions.githubusercontent.com`), which a service trusting only a loopback
 * test issuer refuses at load. The copy replaces that binding with the given issuer URL.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GITHUB_ISSUER } from '../exchange-service/oidc/issuers.js';
import { EXAMPLE_POLICIES_DIR } from '../exchange-service/package-root.js';

export const EXAMPLE_POLICIES = EXAMPLE_POLICIES_DIR;

/** Copy the example policies into `dir` (created if missing), bound to `issuer`; returns `dir`. */
export function writeExamplePolicies(issuer: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(EXAMPLE_POLICIES)) {
    const text = readFileSync(join(EXAMPLE_POLICIES, name), 'utf8');
    writeFileSync(join(dir, name), text.replaceAll(`issuer: ${GITHUB_ISSUER}`, `issuer: ${issuer}`));
  }
  return dir;
}
