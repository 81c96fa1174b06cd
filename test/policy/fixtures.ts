/**
 * Policy fixtures: the spec's example site file and a monorepo org file as data (override any key, or
 * set it to undefined to drop it), rendered to YAML, loaded from text or from a real temp directory.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadPolicyTexts } from '../../exchange-service/policy/load.js';
import type { PolicySet } from '../../exchange-service/policy/types.js';
import { githubClaims, type GitHubTokenClaims } from '../helpers/issuer.js';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const DOCS_REPOSITORY_ID = '892043217';
export const ACME_OWNER_ID = '51204';
export const MONOREPO_ID = '903318846';

type Data = Record<string, unknown>;

function merge(base: Data, overrides: Data): Data {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export function productionRule(overrides: Data = {}): Data {
  return merge(
    {
      name: 'production',
      context: 'production',
      permissions: ['deployments:write'],
      max_ttl: '10m',
      when: {
        event_name: ['push', 'workflow_dispatch'],
        ref: 'refs/heads/main',
        environment: 'production',
        job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/main',
      },
    },
    overrides,
  );
}

export function previewRule(overrides: Data = {}): Data {
  return merge(
    {
      name: 'previews',
      context: 'preview',
      permissions: ['deployments:write'],
      when: { event_name: ['pull_request_target', 'workflow_run'] },
    },
    overrides,
  );
}

/** The spec's docs site file. */
export function docsSite(overrides: Data = {}): Data {
  return merge(
    {
      site: 'docs',
      org: 'acme',
      repository: 'acme/docs',
      repository_id: DOCS_REPOSITORY_ID,
      repository_owner_id: ACME_OWNER_ID,
      rules: [productionRule(), previewRule()],
    },
    overrides,
  );
}

/** acme's monorepo deploys every app-* site. */
export function monorepoOrg(overrides: Data = {}): Data {
  return merge(
    {
      org: 'acme',
      sites: ['app-*'],
      repository: 'acme/monorepo',
      repository_id: MONOREPO_ID,
      repository_owner_id: ACME_OWNER_ID,
      rules: [
        productionRule({
          when: {
            event_name: ['push'],
            ref: 'refs/heads/main',
            environment: 'production',
            job_workflow_ref: 'acme/monorepo/.github/workflows/deploy-apps.yml@refs/heads/main',
          },
        }),
        previewRule(),
      ],
    },
    overrides,
  );
}

export function toYaml(data: Data): string {
  return stringify(data);
}

/** Load files given as data, named `<key>`: e.g. policySet({ 'docs.yml': docsSite() }). */
export function policySet(files: Record<string, Data>): PolicySet {
  return loadPolicyTexts(Object.entries(files).map(([file, data]) => ({ file, text: toYaml(data) })));
}

/**
 * Claims GitHub would send for acme/docs (push to main, production environment, pinned workflow).
 * Overrides may have any type (tests feed numbers and arrays where strings belong); undefined removes a claim.
 */
export function docsClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return githubClaims(GITHUB_ISSUER, overrides as Partial<GitHubTokenClaims>);
}

/** Claims for the acme/monorepo, otherwise like docsClaims. */
export function monorepoClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return docsClaims({
    repository: 'acme/monorepo',
    repository_id: MONOREPO_ID,
    job_workflow_ref: 'acme/monorepo/.github/workflows/deploy-apps.yml@refs/heads/main',
    workflow_ref: 'acme/monorepo/.github/workflows/deploy-apps.yml@refs/heads/main',
    ...overrides,
  });
}

/** A real temp directory with the given files (text); `cleanup` removes it. */
export async function tempPolicyDir(files: Record<string, string>): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'deploy-sts-policies-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
