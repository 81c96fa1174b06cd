/** A dev token signed with another data directory's key: the refusal names both directories and the fix. */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { EXAMPLE_POLICIES, exchangeToken, startService, tempDir, type TestService } from '../helpers/service.js';

const work = tempDir('deploy-sts-dev-issuer-');
const elsewhere = join(work, 'elsewhere');
let svc: TestService;

beforeAll(async () => {
  svc = await startService({ issuer: 'https://token.actions.githubusercontent.com', env: { DEPLOY_STS_DEV_ISSUER: '1' } });
});
afterAll(async () => {
  await svc.stop();
  rmSync(work, { recursive: true, force: true });
});

async function devToken(dataDir: string): Promise<string> {
  const r = await cli(['dev', 'token', '--audience', svc.audience, '--data-dir', dataDir]);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

describe('a dev token signed with the key of another data directory', () => {
  it('is refused naming the directory whose key signed it, the one the service uses, and the fix', async () => {
    const denied = await exchangeToken(svc.url, await devToken(elsewhere));
    expect(denied.status).toBe(400);
    expect(denied.body.error_description).toBe(
      `subject_token: signature does not verify against the issuer's key; it was signed with the dev issuer key of data directory "${elsewhere}", ` +
        `and this service verifies dev issuer tokens with the key in data directory "${svc.dataDir}": make the token with \`deploy-sts dev token --data-dir ${svc.dataDir}\` ` +
        `(or DEPLOY_STS_DATA_DIR=${svc.dataDir}), or run the service with the data directory that made it`,
    );
    const granted = await exchangeToken(svc.url, await devToken(svc.dataDir));
    expect(granted.status).toBe(200);
  });

  it('is explained the same way by policy explain', async () => {
    const file = join(work, 'dev.jwt');
    writeFileSync(file, await devToken(elsewhere));
    const r = await cli(['policy', 'explain', '--site', 'docs', '--token', file, '--policies', EXAMPLE_POLICIES, '--data-dir', svc.dataDir, '--audience', svc.audience]);
    expect(r.stdout).toContain(`NOT verified: subject_token: signature does not verify against the issuer's key; it was signed with the dev issuer key of data directory "${elsewhere}"`);
    expect(r.code).toBe(1);
  });
});
