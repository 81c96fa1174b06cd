/**
 * What `serve` says at start-up about the gateway's credentials: a credential a policy names that is not stored (the
 * gateway answers 503 for that site until it is), and stored credentials kept unsealed without a key-encryption key.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { startService, tempDir } from '../helpers/service.js';
import { docsSite, toYaml } from '../policy/fixtures.js';

const SITE_ID = '3970e0fe-8564-4903-9a55-c5f8de49fb8b';
let issuer: TestIssuer;
const dir = tempDir('deploy-sts-gateway-startup-');

beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => {
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serve, with a policy naming a credential that is not stored', () => {
  it('warns at start-up, naming the sites and the command that fixes it, and that credentials would be unsealed', async () => {
    const policies = join(dir, 'policies');
    mkdirSync(policies, { recursive: true });
    writeFileSync(join(policies, 'docs.yml'), toYaml(docsSite({ upstream: { netlify: { site_id: SITE_ID, credential: 'netlify-missing' } } })));
    const svc = await startService({ issuer: issuer.url, policies });
    try {
      const warnings = svc.logs.filter((line) => line.includes('"gateway_warning"')).join('\n');
      expect(warnings).toMatch(/credential netlify-missing \(named by the policy of site docs\) is not in the credential store: the gateway answers 503 for that site until an operator runs: .*deploy-sts credentials set netlify-missing/);
      expect(warnings).toMatch(/DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE is not set: stored platform credentials are kept unencrypted/);
    } finally {
      await svc.stop();
    }
  });
});
