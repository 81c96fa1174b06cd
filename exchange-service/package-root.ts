/**
 * Where deploy-sts is installed: the directory of its package.json, found from this file's own location (never the
 * working directory), so that the CLI finds the example policies and reports its version wherever it runs from: a
 * clone (sources or build/), or a global install from the packed tarball.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'deploy-sts') return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the deploy-sts package.json above ${from}; reinstall deploy-sts`);
  }
}

/** The package's root directory (holds package.json, examples/, schema/). */
export const PACKAGE_ROOT = findRoot(import.meta.dirname);

/** The package's version, from its package.json. */
export const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The example policies shipped with the package (`serve --dev-defaults` uses them). */
export const EXAMPLE_POLICIES_DIR = join(PACKAGE_ROOT, 'examples', 'policies');
