/**
 * Generated policy directories for the scaling runs: N site files of 5 rules each, every site bound to
 * acme/docs (the repository the benchmark tokens come from), so one token pool serves every N and each request
 * can name any site. The rules are realistic: the token mix matches the first, the last, or none of them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const siteName = (i: number): string => `site-${String(i).padStart(5, '0')}`;

export function siteNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => siteName(i));
}

function siteFile(site: string): string {
  return `site: ${site}
org: acme
repository: acme/docs
repository_id: "892043217"
repository_owner_id: "51204"
rules:
  - name: production
    context: production
    permissions: [deployments:write]
    max_ttl: 10m
    when:
      event_name: [push, workflow_dispatch]
      ref: refs/heads/main
      environment: production
      job_workflow_ref: acme/docs/.github/workflows/deploy.yml@refs/heads/main
  - name: releases
    context: production
    permissions: [deployments:write]
    when:
      event_name: release
      ref: refs/tags/v*
      job_workflow_ref: acme/docs/.github/workflows/release.yml@refs/tags/**
  - name: hotfix
    context: production
    permissions: [deployments:write]
    max_ttl: 5m
    when:
      event_name: workflow_dispatch
      ref: refs/heads/hotfix/*
      environment: production
  - name: staging
    context: preview
    permissions: [deployments:write, sites:read]
    when:
      event_name: push
      ref: refs/heads/release/**
      environment: staging
  - name: previews
    context: preview
    permissions: [deployments:write]
    max_ttl: 15m
    when:
      event_name: [pull_request_target, workflow_run]
      repository_visibility: public
`;
}

/** Write `count` site files into `dir` (created). Returns the site slugs. */
export function writePolicies(dir: string, count: number): string[] {
  mkdirSync(dir, { recursive: true });
  const sites = siteNames(count);
  for (const site of sites) writeFileSync(join(dir, `${site}.yml`), siteFile(site));
  return sites;
}
