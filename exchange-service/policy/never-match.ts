/**
 * Conditions that are valid policy but can never match a GitHub OIDC token: `policy check` warns about them (they
 * do not stop loading: a rule that never matches denies, which is safe, but it is surely not what was meant).
 *
 * - `ref`: GitHub sends full ref names (`refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/42/merge`).
 * - `job_workflow_ref` / `workflow_ref`: GitHub sends `owner/repo/path@ref`; without `@` (or `**`) no value matches.
 * - `event_name`: only the events that trigger workflows, as GitHub documents them ("Events that trigger
 *   workflows"). `workflow_call` is not one a token carries: a called workflow's token has its caller's event.
 * - `environment`: GitHub environment names have no surrounding spaces.
 */
import { didYouMean } from '../suggest.js';

/** The `event_name` values GitHub sends: docs.github.com, Actions reference, "Events that trigger workflows". */
export const GITHUB_EVENTS = [
  'branch_protection_rule',
  'check_run',
  'check_suite',
  'create',
  'delete',
  'deployment',
  'deployment_status',
  'discussion',
  'discussion_comment',
  'fork',
  'gollum',
  'image_version',
  'issue_comment',
  'issues',
  'label',
  'merge_group',
  'milestone',
  'page_build',
  'project',
  'project_card',
  'project_column',
  'public',
  'pull_request',
  'pull_request_review',
  'pull_request_review_comment',
  'pull_request_target',
  'push',
  'registry_package',
  'release',
  'repository_dispatch',
  'schedule',
  'status',
  'watch',
  'workflow_dispatch',
  'workflow_run',
  // Not in that list, but sent for the workflows GitHub runs itself (Dependabot updates, CodeQL default set-up).
  'dynamic',
] as const;

export interface NeverMatch {
  claim: string;
  /** Index of the pattern when the condition is a list. */
  index: number;
  pattern: string;
  message: string;
}

const WILDCARD = /\*/;

/** The literal text before the first wildcard (the whole pattern when it has none). */
function literalPrefix(pattern: string): string {
  const at = pattern.search(WILDCARD);
  return at === -1 ? pattern : pattern.slice(0, at);
}

function problemOf(claim: string, pattern: string): string | undefined {
  switch (claim) {
    case 'ref': {
      const prefix = literalPrefix(pattern);
      if (prefix === '' || prefix.startsWith('refs/') || 'refs/'.startsWith(prefix)) return undefined;
      const guess = pattern.startsWith('heads/') || pattern.startsWith('tags/') || pattern.startsWith('pull/') ? `refs/${pattern}` : `refs/heads/${pattern}`;
      return `ref ${JSON.stringify(pattern)} never matches: GitHub sends full ref names (refs/heads/main, refs/tags/v1.2.3, refs/pull/42/merge); did you mean ${JSON.stringify(guess)}?`;
    }
    case 'job_workflow_ref':
    case 'workflow_ref':
      if (pattern.includes('@') || pattern.includes('**')) return undefined;
      return `${claim} ${JSON.stringify(pattern)} never matches: GitHub sends owner/repo/path@ref (e.g. acme/docs/.github/workflows/deploy.yml@refs/heads/main); add @ and the ref, e.g. ${JSON.stringify(`${pattern}@refs/heads/main`)}`;
    case 'event_name': {
      if (WILDCARD.test(pattern) || (GITHUB_EVENTS as readonly string[]).includes(pattern)) return undefined;
      if (pattern === 'workflow_call') {
        return 'event_name "workflow_call" never matches: a called (reusable) workflow\'s token carries the event of the workflow that called it; list that event (e.g. push), and pin the called workflow with job_workflow_ref';
      }
      if (pattern === 'pull_request_comment') {
        return 'event_name "pull_request_comment" never matches: GitHub sends comments on pull requests as issue_comment';
      }
      return `event_name ${JSON.stringify(pattern)} is not an event GitHub sends${didYouMean(pattern, GITHUB_EVENTS)}; see "Events that trigger workflows" in GitHub's documentation`;
    }
    case 'environment':
      if (pattern === pattern.trim()) return undefined;
      return `environment ${JSON.stringify(pattern)} never matches: GitHub environment names have no leading or trailing spaces; write ${JSON.stringify(pattern.trim())}`;
    default:
      return undefined;
  }
}

/** Every pattern of a rule's `when` block that can never match. */
export function neverMatching(when: Readonly<Record<string, readonly string[] | undefined>>): NeverMatch[] {
  const found: NeverMatch[] = [];
  for (const [claim, patterns] of Object.entries(when)) {
    (patterns ?? []).forEach((pattern, index) => {
      const message = problemOf(claim, pattern);
      if (message !== undefined) found.push({ claim, index, pattern, message });
    });
  }
  return found;
}
