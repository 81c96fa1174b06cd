/**
 * Every failure the Action reports is an `ActionError`: a stable code, what happened, and the fix. The step's
 * `setFailed` message is `render()`: the problem, the details a maintainer needs, then `Fix: ...`.
 * Nothing here ever holds a token.
 */
import { formatClaims, type DisplayClaims } from './subject-claims.js';
import { seconds } from '../shared/text.js';

export type ActionErrorCode =
  /** An input is missing or malformed. */
  | 'invalid_input'
  /** `url` is http:// to something other than loopback. */
  | 'insecure_url'
  /** The job has no OIDC token to give: no `id-token: write`, or a fork `pull_request`. */
  | 'id_token_unavailable'
  /** The runner's OIDC token endpoint failed. */
  | 'id_token_failed'
  /** The policy refused: `invalid_target` or `invalid_scope`. */
  | 'denied'
  /** The service refused the request or the subject token (any other 4xx). */
  | 'rejected'
  /** No connection: refused, DNS, reset. */
  | 'unreachable'
  /** TLS handshake or certificate verification failed. */
  | 'tls_failure'
  /** Connect, total or overall timeout. */
  | 'timeout'
  /** 5xx or 429 on every attempt, or a Retry-After longer than the Action waits. */
  | 'service_unavailable'
  /** The service answered something that is not a valid token response. */
  | 'bad_response'
  /** A bug in the Action itself. */
  | 'internal_error';

export const FORK_PREVIEWS_DOC = 'https://github.com/deploy-sts/deploy-sts#fork-previews';
/** Every refusal of the exchange service, keyed by its error text: what it means, how to fix it. */
export const TROUBLESHOOTING_DOC = 'https://github.com/deploy-sts/deploy-sts/blob/main/docs/troubleshooting.md';

export class ActionError extends Error {
  constructor(
    readonly code: ActionErrorCode,
    /** What happened, one sentence. */
    readonly problem: string,
    /** What to change so it works, one or two sentences. */
    readonly fix: string,
    /** Lines shown between the problem and the fix (claims, the service's words). */
    readonly details: readonly string[] = [],
  ) {
    super(problem);
    this.name = 'ActionError';
  }

  /** The full message for `core.setFailed`. */
  render(): string {
    return [`deploy-sts [${this.code}]: ${this.problem}`, ...this.details, `Fix: ${this.fix}`].join('\n');
  }
}

/** Anything thrown that is not an ActionError is a bug of ours: say so without hiding the message. */
export function toActionError(error: unknown): ActionError {
  if (error instanceof ActionError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ActionError(
    'internal_error',
    `Unexpected error: ${message}`,
    'This is a bug in deploy-sts; please open an issue at https://github.com/deploy-sts/deploy-sts/issues with this log.',
  );
}

export interface RunContext {
  /** GITHUB_EVENT_NAME */
  eventName?: string;
  /** True when the event payload says the pull request's head is another repository. */
  fromFork?: boolean;
}

/** ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN are not set. */
export function missingIdToken(context: RunContext): ActionError {
  const permission = 'Give the job `permissions: id-token: write` (at the workflow or job level).';
  const fork =
    'A `pull_request` run from a fork never gets an OIDC token from GitHub, whatever its permissions: deploy fork ' +
    'previews from `pull_request_target` or `workflow_run`, in a job that never runs the pull request\'s code — ' +
    `see ${FORK_PREVIEWS_DOC}`;
  const isPullRequest = context.eventName === 'pull_request';
  const problem = isPullRequest && context.fromFork
    ? 'This `pull_request` run comes from a fork, and GitHub gives fork pull requests no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set).'
    : 'This job cannot request a GitHub OIDC token: ACTIONS_ID_TOKEN_REQUEST_URL is not set, so `permissions: id-token: write` is missing — or this is a `pull_request` run from a fork.';
  const fix = isPullRequest ? `${fork} For pull requests from branches of this repository: ${permission}` : `${permission} ${fork}`;
  return new ActionError('id_token_unavailable', problem, fix);
}

/** The runner's token endpoint answered with an error. */
export function idTokenFailed(cause: string): ActionError {
  return new ActionError(
    'id_token_failed',
    `GitHub's OIDC token endpoint failed: ${cause}`,
    'Re-run the job; if it keeps failing, check https://www.githubstatus.com and that the job has `permissions: id-token: write`.',
  );
}

export interface ServiceRefusal {
  status: number;
  /** The service's `error`, verbatim. */
  error: string;
  /** The service's `error_description`, verbatim. */
  description: string;
  site: string;
  url: string;
  /** Claims of the subject token the service refused, decoded for display. */
  claims?: DisplayClaims;
  /** Every claim a policy can read, for the JSON copy `deploy-sts policy explain --claims -` takes. */
  policyClaims?: Record<string, string>;
}

/** The service's description of a site no policy names (exchange-service/policy/match.ts). */
const UNKNOWN_SITE = /^site .* is not known to this service$/;

/** `text` as one shell word: as is when it is plainly safe, else single-quoted (a `'` inside as `'\''`). */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * A complete `deploy-sts policy explain` command for this denial, to paste where the service's policies are: the
 * claims as JSON on its standard input when the token could be decoded, else a `--token <file>` to fill in. Every
 * value from the token is shell-quoted: a branch name is chosen by whoever pushed it.
 */
export function explainCommand(site: string, url: string, policyClaims: Record<string, string> | undefined): string {
  const audience = policyClaims?.aud ?? url;
  const common = `--site ${shellWord(site)} --policies "\${DEPLOY_STS_POLICIES:-policies}" --audience ${shellWord(audience)}`;
  if (policyClaims === undefined) return `deploy-sts policy explain ${common} --token <file>`;
  return `printf '%s\\n' ${shellWord(JSON.stringify(policyClaims))} | deploy-sts policy explain ${common} --claims -`;
}

/** A 4xx from `/token`: a denial by the policy, or a refused request. */
export function serviceRefused(refusal: ServiceRefusal): ActionError {
  const { status, error, description, site, claims, policyClaims } = refusal;
  const head = `The exchange service at ${refusal.url} refused a token for site "${site}" (HTTP ${status}).`;
  const details = [`${error}: ${description}`];
  if (claims) details.push('The GitHub OIDC token of this job carried:', ...formatClaims(claims));
  details.push(`What this refusal means and how to fix it: ${TROUBLESHOOTING_DOC}`);
  const command = explainCommand(site, refusal.url, policyClaims);
  const explain = policyClaims
    ? `To see how each rule of the policy judges this run, run this where the service's policy files are (DEPLOY_STS_POLICIES, else ./policies):\n  ${command}`
    : `To see how each rule of the policy judges such a token, run this where the service's policy files are, with <file> holding a GitHub OIDC token of a run like this one:\n  ${command}`;
  switch (error) {
    case 'invalid_target':
      if (UNKNOWN_SITE.test(description)) {
        return new ActionError(
          'denied',
          head,
          `Check the \`site\` input: the service has no policy for a site "${site}" — a typo, or the site's policy file is not deployed to the service yet. The slug must be the \`site:\` of a policy file there (or one of an org file's \`sites:\`); ask the service's operator if you are not sure.`,
          details,
        );
      }
      return new ActionError(
        'denied',
        head,
        `Compare the claims above with the trust policy of site "${site}": run the deploy from the event, branch, workflow and environment a rule admits, or change the policy's rule. ${explain}`,
        details,
      );
    case 'invalid_scope':
      return new ActionError(
        'denied',
        head,
        `Request only permissions the matching rule grants: fix the \`scope\` input, or leave it empty to get everything the rule grants. ${explain}`,
        details,
      );
    case 'invalid_request':
      if (/\baudience\b|\baud\b/i.test(description)) {
        return new ActionError(
          'rejected',
          head,
          'Leave the `audience` input empty so the Action uses the audience the service advertises, or set it to the audience the service expects (its DEPLOY_STS_AUDIENCE setting). An advertised audience is used only when it is an https:// URL on the same host as `url`: if the log warns that it was ignored, set the `audience` input.',
          details,
        );
      }
      return new ActionError(
        'rejected',
        head,
        `The service names the failed condition above; fix that. A subject token is accepted once: re-run the job rather than reusing a token. ${explain}`,
        details,
      );
    default:
      if (status === 413) {
        return new ActionError('rejected', head, 'The request is larger than the service accepts: shorten the `scope` input.', details);
      }
      if (status === 404 || status === 405) {
        return new ActionError(
          'rejected',
          head,
          `Check that \`url\` is the base URL of a deploy-sts exchange service (its token endpoint is \`<url>/token\`).`,
          details,
        );
      }
      return new ActionError('rejected', head, `The service's answer above says what to change. ${explain}`, details);
  }
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export type TransportFailureKind = 'unreachable' | 'tls_failure' | 'timeout';

export interface TransportFailure {
  kind: TransportFailureKind;
  /** One line: what exactly failed, e.g. `connection refused (ECONNREFUSED)`. */
  detail: string;
  url: string;
  attempts: number;
}

/** No usable HTTP answer: say which failure, where, and after how many attempts. */
export function transportFailed(failure: TransportFailure): ActionError {
  const { kind, detail, url, attempts } = failure;
  const tries = plural(attempts, 'attempt');
  switch (kind) {
    case 'unreachable':
      return new ActionError(
        'unreachable',
        `The exchange service at ${url} is unreachable: ${detail} (after ${tries}).`,
        'Check that `url` is right and that the service is running and reachable from this runner (firewall, DNS, proxy settings: HTTPS_PROXY / NO_PROXY).',
      );
    case 'tls_failure':
      return new ActionError(
        'tls_failure',
        `TLS with the exchange service at ${url} failed: ${detail} (after ${tries}).`,
        'Serve the exchange service with a certificate that is valid for this host name and chains to a public CA (or add your CA with NODE_EXTRA_CA_CERTS), and check that `url` uses https:// on a TLS port.',
      );
    case 'timeout':
      return new ActionError(
        'timeout',
        `The exchange service at ${url} timed out: ${detail} (after ${tries}).`,
        'Check that the service is healthy and reachable from this runner; a firewall that drops packets shows up as a connect timeout.',
      );
  }
}

/** Why the Action stopped retrying before it ran out of attempts. */
export type GiveUp =
  /** The service's `Retry-After` is longer than the Action waits, or than the time left. */
  | { reason: 'retry-after'; retryAfterMs: number }
  /** The next wait would pass the overall deadline. */
  | { reason: 'deadline'; deadlineMs: number };

export interface Unavailable {
  status: number;
  error?: string;
  description?: string;
  url: string;
  attempts: number;
  gaveUp?: GiveUp;
}

/** 5xx / 429 on every attempt, or until the service asked for a longer wait than the Action allows. */
export function serviceUnavailable(answer: Unavailable): ActionError {
  const { status, url, attempts, gaveUp } = answer;
  const details = answer.error ? [`${answer.error}: ${answer.description ?? ''}`.trimEnd()] : [];
  const busy = status === 429;
  if (gaveUp?.reason === 'retry-after') {
    const asked = Math.ceil(gaveUp.retryAfterMs / 1000);
    return new ActionError(
      'service_unavailable',
      `The exchange service at ${url} answered HTTP ${status} (after ${plural(attempts, 'attempt')}) and asked to be retried in ${asked} s, later than this step waits; no token was issued.`,
      `The service asked to retry in ${asked} s; re-run the job later${busy ? ' (it is rate limiting this repository)' : ''}.`,
      details,
    );
  }
  const answered = attempts === 1 ? `answered HTTP ${status} (after 1 attempt)` : `answered HTTP ${status} on each of ${attempts} attempts`;
  const stopped = gaveUp?.reason === 'deadline' ? `, and the step's overall time limit of ${seconds(gaveUp.deadlineMs)} leaves no time for another` : '';
  return new ActionError(
    'service_unavailable',
    `The exchange service at ${url} ${answered}${stopped}; no token was issued.`,
    busy
      ? 'The service is rate limiting this repository: re-run the job later, or ask the service operator to raise the limit.'
      : 'The service (or a dependency such as its keys, storage or audit log) is down: re-run the job later, and ask the service operator to check its health and logs.',
    details,
  );
}

/** The step's overall deadline passed before the service gave a usable answer. */
export function deadlinePassed(url: string, deadlineMs: number, attempts: number): ActionError {
  const when = attempts === 0 ? 'before the first attempt' : `after ${plural(attempts, 'attempt')}`;
  return new ActionError(
    'timeout',
    `The exchange service at ${url} gave no usable answer within the step's overall time limit of ${seconds(deadlineMs)} (${when}).`,
    'Check that the service is healthy and reachable from this runner (a firewall that drops packets shows up as a timeout), then re-run the job.',
  );
}

/** A 2xx that is not a valid token response, or a redirect. */
export function badResponse(url: string, why: string): ActionError {
  return new ActionError(
    'bad_response',
    `The exchange service at ${url} gave an answer the Action cannot use: ${why}.`,
    'Check that `url` is the base URL of a deploy-sts exchange service (not a proxy login page or redirect), and that the service and the Action are compatible versions.',
  );
}
