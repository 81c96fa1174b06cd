/** Configuration errors in words: what is wrong with which variable (and flag), never the validator's phrasing. */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { EXAMPLE_POLICIES, tempDir } from '../helpers/service.js';

const work = tempDir('deploy-sts-config-errors-');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const env = { DEPLOY_STS_DATA_DIR: join(work, 'data') };

describe('serve with a bad configuration', () => {
  it('names a missing required option, what it is and an example', async () => {
    const r = await cli(['serve'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('deploy-sts: invalid configuration:\n  - DEPLOY_STS_POLICIES (--policies) is required: the directory of policy files, e.g. ./policies\n');
  });

  it('says what a number, a choice and a switch must be, with the value it got', async () => {
    const r = await cli(['serve', '--port', 'eighty', '--synchronous', 'ful', '--watch-policies', 'maybe', '--trust-proxy', '99'], { ...env, DEPLOY_STS_POLICIES: EXAMPLE_POLICIES });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DEPLOY_STS_PORT (--port): must be a whole number from 0 to 65535 (got "eighty")');
    expect(r.stderr).toContain('DEPLOY_STS_TRUST_PROXY (--trust-proxy): must be a whole number from 0 to 10 (got "99")');
    expect(r.stderr).toContain('DEPLOY_STS_SYNCHRONOUS (--synchronous): must be one of NORMAL, FULL (did you mean "FULL"?) (got "ful")');
    expect(r.stderr).toContain('DEPLOY_STS_WATCH_POLICIES (--watch-policies): must be 1/0, true/false or yes/no (got "maybe")');
    expect(r.stderr).not.toMatch(/Invalid input|expected (string|number)|received/);
  });
});
