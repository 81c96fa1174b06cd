/**
 * What the runner tells about this run that shapes an error message: the event, and whether a pull request
 * comes from a fork (read from the event payload; only used to word the missing-OIDC-token message).
 */
import { readFileSync } from 'node:fs';
import type { RunContext } from './errors.js';

interface PullRequestPayload {
  pull_request?: { head?: { repo?: { fork?: unknown; full_name?: unknown } | null }; base?: { repo?: { full_name?: unknown } | null } };
}

export function readRunContext(env: NodeJS.ProcessEnv): RunContext {
  const eventName = env.GITHUB_EVENT_NAME || undefined;
  const context: RunContext = eventName ? { eventName } : {};
  const path = env.GITHUB_EVENT_PATH;
  if (eventName !== 'pull_request' || !path) return context;
  try {
    const payload = JSON.parse(readFileSync(path, 'utf8')) as PullRequestPayload;
    const head = payload.pull_request?.head?.repo;
    const base = payload.pull_request?.base?.repo;
    // A deleted fork has `head.repo: null`: still a fork.
    const fromFork = head === null || head?.fork === true || (typeof head?.full_name === 'string' && head.full_name !== base?.full_name);
    return { ...context, fromFork };
  } catch {
    return context;
  }
}

/** The runner sets both only when the job has `permissions: id-token: write` (and never for fork `pull_request`). */
export function hasIdTokenAccess(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_ID_TOKEN_REQUEST_URL) && Boolean(env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
}
