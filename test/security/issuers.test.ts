/**
 * A policy binds its issuer. With several trusted issuers (github.com and a GHES), a token from one must never satisfy a
 * policy written for another — not from the other issuer's admin, and not from a repository whose name and numeric id
 * happen to collide with the policy's (ids are unique per issuer, not across them).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, examplePolicies, startService, type TestService } from '../helpers/service.js';
import { claimsOf } from '../helpers/forge.js';
import { docsSite, toYaml } from '../policy/fixtures.js';
import { NO_RATE_LIMITS, expectGranted, expectRefused, policyDir } from './support.js';

let github: TestIssuer;
let ghes: TestIssuer;
beforeAll(async () => {
  github = await startIssuer();
  ghes = await startIssuer();
});
afterAll(async () => {
  await github?.close();
  await ghes?.close();
});

const both = () => `${github.url},${ghes.url}`;

describe('with several trusted issuers', () => {
  it('a policy file without issuer: does not load, and says which to choose', async () => {
    const dir = policyDir({ 'docs.yml': toYaml(docsSite()) });
    try {
      await expect(startService({ issuer: both(), policies: dir, env: NO_RATE_LIMITS })).rejects.toThrow(
        new RegExp(`docs\\.yml:1:1: issuer is required: this service trusts several issuers \\(${github.url}, ${ghes.url}\\), and a policy binds exactly one.*Fix: add issuer:`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a policy file naming an issuer the service does not trust does not load', async () => {
    const text = toYaml(docsSite({ issuer: 'https://ghes.example.com/_services/token' }));
    const dir = policyDir({ 'docs.yml': text });
    try {
      await expect(startService({ issuer: both(), policies: dir, env: NO_RATE_LIMITS })).rejects.toThrow(
        /docs\.yml:\d+:\d+: issuer "https:\/\/ghes\.example\.com\/_services\/token" is not trusted by this service/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a policy bound to one of them', () => {
    let svc: TestService;
    let dir: string;
    beforeAll(async () => {
      dir = examplePolicies(github.url);
      svc = await startService({ issuer: both(), policies: dir, env: NO_RATE_LIMITS });
    });
    afterAll(async () => {
      await svc?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('grants its own issuer\'s token, and records the issuer in the minted token as act.iss', async () => {
      const { answer } = await expectGranted(svc, async () => exchangeToken(svc.url, await github.token()));
      expect(claimsOf(String(answer.body.access_token)).act).toMatchObject({ iss: github.url, repository: 'acme/docs' });
    });

    it('never grants another trusted issuer\'s token with the same repository name and id', async () => {
      await expectRefused(svc, async () => exchangeToken(svc.url, await ghes.token()), {
        status: 400,
        error: 'invalid_target',
        reason: 'repository_mismatch',
        description: /^repository "acme\/docs" may not deploy site "docs"$/,
      });
    });

    it('nor a preview to the other issuer\'s fork-PR run', async () => {
      await expectRefused(svc, async () => exchangeToken(svc.url, await ghes.token({ event_name: 'pull_request_target' })), {
        status: 400,
        error: 'invalid_target',
        reason: 'repository_mismatch',
      });
    });
  });
});

describe('with one trusted issuer', () => {
  it('a policy file without issuer: binds it (existing files keep working)', async () => {
    const dir = policyDir({ 'docs.yml': toYaml(docsSite()) });
    const svc = await startService({ issuer: github.url, policies: dir, env: NO_RATE_LIMITS });
    try {
      const { answer } = await expectGranted(svc, async () => exchangeToken(svc.url, await github.token()));
      expect(claimsOf(String(answer.body.access_token)).act).toMatchObject({ iss: github.url });
    } finally {
      await svc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
