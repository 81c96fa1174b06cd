/**
 * `deploy-sts policy explain` prints claims of a token it may not be able to verify — a token an attacker handed to an
 * operator ("why was my deploy denied?"). Those claims are quoted, and nothing in them reaches the terminal as a
 * control sequence: no ESC/CSI (clearing the screen, rewriting the title, hiding lines), no BEL, no bidi overrides.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { explainCommand } from '../../exchange-service/explain.js';
import { unsignedToken } from '../helpers/forge.js';
import { githubClaims } from '../helpers/issuer.js';
import { EXAMPLE_POLICIES, tempDir } from '../helpers/service.js';

const work = tempDir('deploy-sts-explain-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every character a terminal may act on, except the newlines between lines. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

const HOSTILE = {
  repository: 'acme/docs\u001b[2J\u001b]0;pwned\u0007',
  repository_id: '892043217\u001b[8m',
  event_name: 'push\u009b31m',
  ref: 'refs/heads/main\u202e',
  environment: 'production\r\u001b[1Aok',
  job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main\u2028',
};

async function run(json: boolean): Promise<string> {
  const file = join(work, `hostile-${json}.jwt`);
  writeFileSync(file, unsignedToken({ alg: 'RS256', kid: 'x' }, githubClaims('https://evil.example', HOSTILE)));
  let out = '';
  await explainCommand(
    { site: 'docs', tokenFile: file, jwksFile: undefined, at: undefined, policies: EXAMPLE_POLICIES, audience: undefined, dataDir: work, issuers: ['https://token.actions.githubusercontent.com'], devIssuer: false, json },
    (text) => {
      out += text;
    },
  );
  return out;
}

describe('policy explain on unverified, hostile claims', () => {
  it('quotes every claim and escapes terminal control characters in the text output', async () => {
    const out = await run(false);
    expect(out).toContain('not verified');
    expect(out).not.toMatch(CONTROL);
    expect(out).toContain('repository "acme/docs\\u001b[2J\\u001b]0;pwned\\u0007"');
    expect(out).toContain('event "push\\u009b31m"');
    expect(out).toContain('ref "refs/heads/main\\u202e"');
  });

  it('escapes them in --json output too, which still parses to the same claims', async () => {
    const out = await run(true);
    expect(out).not.toMatch(CONTROL);
    const parsed = JSON.parse(out) as { claims: Record<string, unknown> };
    expect(parsed.claims).toMatchObject(HOSTILE);
  });
});
