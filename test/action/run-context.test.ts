import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasIdTokenAccess, readRunContext } from '../../action/run-context.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deploy-sts-context-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function event(payload: unknown): Promise<string> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify(payload));
  return path;
}

describe('the run context', () => {
  it('knows a pull request from a fork', async () => {
    const path = await event({ pull_request: { head: { repo: { fork: true, full_name: 'mallory/docs' } }, base: { repo: { full_name: 'acme/docs' } } } });
    expect(readRunContext({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: path })).toEqual({ eventName: 'pull_request', fromFork: true });
  });

  it('knows a pull request from a branch of the same repository', async () => {
    const path = await event({ pull_request: { head: { repo: { fork: false, full_name: 'acme/docs' } }, base: { repo: { full_name: 'acme/docs' } } } });
    expect(readRunContext({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: path }).fromFork).toBe(false);
  });

  it('counts a deleted fork as a fork', async () => {
    const path = await event({ pull_request: { head: { repo: null }, base: { repo: { full_name: 'acme/docs' } } } });
    expect(readRunContext({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: path }).fromFork).toBe(true);
  });

  it('reads no payload for other events, and survives a missing one', () => {
    expect(readRunContext({ GITHUB_EVENT_NAME: 'push' })).toEqual({ eventName: 'push' });
    expect(readRunContext({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: join(dir, 'missing.json') })).toEqual({ eventName: 'pull_request' });
  });

  it('has OIDC access only when the runner set both variables', () => {
    expect(hasIdTokenAccess({ ACTIONS_ID_TOKEN_REQUEST_URL: 'u', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' })).toBe(true);
    expect(hasIdTokenAccess({ ACTIONS_ID_TOKEN_REQUEST_URL: 'u' })).toBe(false);
    expect(hasIdTokenAccess({})).toBe(false);
  });
});
