/**
 * Policy bypass through the HTTP API: genuine tokens whose claims come close to what a rule admits — a look-alike
 * repository, branch or workflow, a re-created repository or org under the old name, a fork's or an unpinned
 * workflow, a self-hosted runner, and values aimed at the edges of the glob language (`*` never crosses `/`,
 * `.` is literal, patterns are anchored). Each is refused with invalid_target, no token, and an audit record.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeToken } from '../helpers/service.js';
import { expectGranted, expectRefused, policyDir, startSuite, type Suite } from './support.js';

const APP_ID = '1001';
const OWNER_ID = '51204';
const WF = 'acme/app/.github/workflows';

const APP_POLICY = `site: app
org: acme
repository: acme/app
repository_id: "${APP_ID}"
repository_owner_id: "${OWNER_ID}"
rules:
  - name: production
    context: production
    permissions: [deployments:write]
    when:
      event_name: push
      ref: refs/heads/main
      environment: production
      job_workflow_ref: ${WF}/deploy.yml@refs/heads/main
      runner_environment: github-hosted
  - name: releases
    context: production
    permissions: [deployments:write]
    when:
      event_name: push
      ref: refs/heads/release/*
      job_workflow_ref: ${WF}/release-*.yml@refs/heads/release/*
      runner_environment: github-hosted
  - name: previews
    context: preview
    permissions: [deployments:read]
    when:
      event_name: pull_request_target
      job_workflow_ref: acme/*/.github/workflows/preview.yml@refs/heads/main
`;

/** An org file for other sites of acme: its glob must not reach the app site or another repository's sites. */
const WEB_POLICY = `org: acme
sites: ["web-*"]
repository: acme/web
repository_id: "2001"
repository_owner_id: "${OWNER_ID}"
rules:
  - name: production
    context: production
    permissions: [deployments:write]
    when:
      event_name: push
      ref: refs/heads/main
`;

/** The claims of a production deploy of acme/app that the policy grants. */
const APP = {
  repository: 'acme/app',
  repository_id: APP_ID,
  repository_owner: 'acme',
  repository_owner_id: OWNER_ID,
  event_name: 'push',
  ref: 'refs/heads/main',
  environment: 'production',
  job_workflow_ref: `${WF}/deploy.yml@refs/heads/main`,
  workflow_ref: `${WF}/deploy.yml@refs/heads/main`,
  runner_environment: 'github-hosted',
};

let suite: Suite;
let policies: string;

beforeAll(async () => {
  policies = policyDir({ 'app.yml': APP_POLICY, 'web.yml': WEB_POLICY });
  suite = await startSuite({ policies });
});
afterAll(async () => {
  await suite?.stop();
  rmSync(policies, { recursive: true, force: true });
});

const exchange = (claims: Record<string, unknown>, site = 'app') => async () => exchangeToken(suite.svc.url, await suite.issuer.token({ ...APP, ...claims }), site);
const noRule = { status: 400, error: 'invalid_target', reason: 'no_rule_matched' };
const notBound = { status: 400, error: 'invalid_target', reason: 'repository_mismatch', description: /^repository .* may not deploy site "app"$/ };

describe('the controls: what the policy does grant', () => {
  it('grants the production deploy', async () => {
    const { answer } = await expectGranted(suite.svc, exchange({}));
    expect(answer.body).toMatchObject({ context: 'production', rule: 'production' });
  });

  it('grants a release branch through its release workflow', async () => {
    const { answer } = await expectGranted(suite.svc, exchange({ ref: 'refs/heads/release/1.2', job_workflow_ref: `${WF}/release-app.yml@refs/heads/release/1.2`, environment: undefined }));
    expect(answer.body).toMatchObject({ context: 'production', rule: 'releases' });
  });

  it('grants a fork preview through the pinned preview workflow', async () => {
    const { answer } = await expectGranted(suite.svc, exchange({ event_name: 'pull_request_target', job_workflow_ref: `${WF}/preview.yml@refs/heads/main` }));
    expect(answer.body).toMatchObject({ context: 'preview', rule: 'previews', scope: 'deployments:read' });
  });
});

describe('look-alike repositories are not the site\'s repository', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['acme/app-evil with acme/app\'s id', { repository: 'acme/app-evil' }],
    ['acme/app-evil with its own id', { repository: 'acme/app-evil', repository_id: '6661' }],
    ['acme/ap', { repository: 'acme/ap' }],
    ['acme/app.evil', { repository: 'acme/app.evil' }],
    ['acme/app/evil', { repository: 'acme/app/evil' }],
    ['evil/app (a fork, same name)', { repository: 'evil/app', repository_owner: 'evil', repository_owner_id: '666', repository_id: '6662' }],
    ['acme-evil/app', { repository: 'acme-evil/app', repository_owner: 'acme-evil', repository_owner_id: '667', repository_id: '6663' }],
  ];
  for (const [name, claims] of cases) {
    it(`refuses ${name}, with no policy details`, async () => {
      const { answer } = await expectRefused(suite.svc, exchange(claims), notBound);
      expect(String(answer.body.error_description)).not.toMatch(/rule|refs\/|production|workflow/);
    });
  }
});

describe('names reused after a delete or rename', () => {
  it('refuses a re-created repository: same name, new repository_id', async () => {
    await expectRefused(suite.svc, exchange({ repository_id: '999999' }), notBound);
  });

  it('refuses a re-created org: same names, new owner id (and new repository id)', async () => {
    await expectRefused(suite.svc, exchange({ repository_owner_id: '424242', repository_id: '4243' }), notBound);
  });

  it('refuses the old repository id under a new owner id (the policy pins the owner too)', async () => {
    await expectRefused(suite.svc, exchange({ repository_owner_id: '424242' }), notBound);
  });
});

describe('refs', () => {
  const cases: [string, string][] = [
    ['refs/heads/main-evil', 'refs/heads/main-evil'],
    ['refs/heads/main/evil', 'refs/heads/main/evil'],
    ['refs/heads/mainx', 'refs/heads/mainx'],
    ['refs/tags/main', 'refs/tags/main'],
    ['refs/pull/1/merge', 'refs/pull/1/merge'],
    ['refs/heads/feature/../main', 'refs/heads/feature/../main'],
    ['refs/heads/main with a trailing slash', 'refs/heads/main/'],
    ['main without refs/heads', 'main'],
  ];
  for (const [name, ref] of cases) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange({ ref }), noRule);
    });
  }
});

describe('workflows from forks, other repositories, or not pinned', () => {
  const cases: [string, string][] = [
    ['the same workflow in a fork', 'evil/app/.github/workflows/deploy.yml@refs/heads/main'],
    ['the same workflow in a look-alike repository', 'acme/app-evil/.github/workflows/deploy.yml@refs/heads/main'],
    ['a reusable workflow of another repository', 'acme/shared/.github/workflows/deploy.yml@refs/heads/main'],
    ['the workflow from a feature branch', `${WF}/deploy.yml@refs/heads/feature`],
    ['the workflow from a pull request merge ref', `${WF}/deploy.yml@refs/pull/7/merge`],
    ['the workflow pinned to a sha instead of main', `${WF}/deploy.yml@e2b4c3a1f0d9e8c7b6a5f4e3d2c1b0a9f8e7d6c5`],
    ['another workflow of the repository', `${WF}/ci.yml@refs/heads/main`],
    ['a workflow whose name only looks alike (. is literal)', `${WF}/deployxyml@refs/heads/main`],
    ['a path climbing out of the workflows directory', `${WF}/../../evil/app/.github/workflows/deploy.yml@refs/heads/main`],
    ['the pinned workflow with a suffix (patterns are anchored)', `${WF}/deploy.yml@refs/heads/main@refs/heads/evil`],
    ['the pinned workflow with a prefix (patterns are anchored)', `x${WF}/deploy.yml@refs/heads/main`],
  ];
  for (const [name, job_workflow_ref] of cases) {
    it(`refuses ${name}`, async () => {
      await expectRefused(suite.svc, exchange({ job_workflow_ref }), noRule);
    });
  }

  it('refuses a token without job_workflow_ref (an absent claim never matches)', async () => {
    await expectRefused(suite.svc, exchange({ job_workflow_ref: undefined }), noRule);
  });
});

describe('runners', () => {
  for (const [name, runner] of [
    ['a self-hosted runner', 'self-hosted'],
    ['a differently cased value', 'GitHub-hosted'],
    ['a look-alike value', 'github-hosted-evil'],
    ['no runner_environment', undefined],
  ] as const) {
    it(`refuses ${name} where the rule asks for github-hosted`, async () => {
      await expectRefused(suite.svc, exchange({ runner_environment: runner }), noRule);
    });
  }
});

describe('glob edges', () => {
  const release = (ref: string, workflow = `${WF}/release-app.yml@${ref}`) => exchange({ ref, job_workflow_ref: workflow, environment: undefined });
  it('refuses a release ref with an extra segment (* never crosses /)', async () => {
    await expectRefused(suite.svc, release('refs/heads/release/1/2'), noRule);
  });

  it('refuses a release ref climbing with .. (* never crosses /)', async () => {
    await expectRefused(suite.svc, release('refs/heads/release/../main'), noRule);
  });

  it('refuses the bare release prefix (the / before * is literal)', async () => {
    await expectRefused(suite.svc, release('refs/heads/release'), noRule);
  });

  it('refuses a look-alike release prefix', async () => {
    await expectRefused(suite.svc, release('refs/heads/releases/1'), noRule);
  });

  it('refuses a release workflow file in a subdirectory (* never crosses /)', async () => {
    await expectRefused(suite.svc, release('refs/heads/release/1', `${WF}/release-x/evil.yml@refs/heads/release/1`), noRule);
  });

  it('refuses a release workflow whose ref is not the token\'s release branch pattern', async () => {
    await expectRefused(suite.svc, release('refs/heads/release/1', `${WF}/release-app.yml@refs/heads/main-evil`), noRule);
  });

  it('refuses a preview workflow from a nested path under the owner glob (acme/* never crosses /)', async () => {
    await expectRefused(suite.svc, exchange({ event_name: 'pull_request_target', job_workflow_ref: 'acme/app/x/.github/workflows/preview.yml@refs/heads/main' }), noRule);
  });

  it('refuses a preview workflow from another owner', async () => {
    await expectRefused(suite.svc, exchange({ event_name: 'pull_request_target', job_workflow_ref: 'evil/app/.github/workflows/preview.yml@refs/heads/main' }), noRule);
  });
});

describe('sites', () => {
  it('refuses a look-alike site name: an unknown site', async () => {
    await expectRefused(suite.svc, exchange({}, 'app-evil'), { status: 400, error: 'invalid_target', reason: 'unknown_site' });
  });

  for (const site of ['APP', 'app/evil', 'app ', '../app', '']) {
    it(`refuses a malformed site name ${JSON.stringify(site)}`, async () => {
      await expectRefused(suite.svc, exchange({}, site), { status: 400, error: 'invalid_target' });
    });
  }

  it('refuses a site of an org file to a repository the org file does not bind', async () => {
    await expectRefused(suite.svc, exchange({}, 'web-shop'), { status: 400, error: 'invalid_target', reason: 'repository_mismatch' });
  });

  it('refuses the app site to the org file\'s repository', async () => {
    await expectRefused(suite.svc, exchange({ repository: 'acme/web', repository_id: '2001' }), notBound);
  });
});
