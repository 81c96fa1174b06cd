import { describe, expect, it } from 'vitest';
import {
  ActionError,
  FORK_PREVIEWS_DOC,
  TROUBLESHOOTING_DOC,
  badResponse,
  missingIdToken,
  serviceRefused,
  serviceUnavailable,
  deadlinePassed,
  explainCommand,
  shellWord,
  toActionError,
  transportFailed,
} from '../../action/errors.js';

describe('a job without an OIDC token', () => {
  it('names the missing permission, the fork pull_request case and where the safe way is documented', () => {
    const message = missingIdToken({ eventName: 'push' }).render();
    expect(message).toContain('permissions: id-token: write');
    expect(message).toContain('`pull_request` run from a fork');
    expect(message).toContain('pull_request_target');
    expect(message).toContain('workflow_run');
    expect(message).toContain(FORK_PREVIEWS_DOC);
    expect(FORK_PREVIEWS_DOC).toBe('https://github.com/deploy-sts/deploy-sts#fork-previews');
  });

  it('leads with the fork explanation on a pull_request from a fork', () => {
    const error = missingIdToken({ eventName: 'pull_request', fromFork: true });
    expect(error.code).toBe('id_token_unavailable');
    expect(error.problem).toContain('comes from a fork');
    expect(error.fix.indexOf('pull_request_target')).toBeLessThan(error.fix.indexOf('id-token: write'));
    expect(error.fix).toContain(FORK_PREVIEWS_DOC);
  });

  it('still mentions both causes on a pull_request when it cannot tell', () => {
    const message = missingIdToken({ eventName: 'pull_request' }).render();
    expect(message).toContain('permissions: id-token: write');
    expect(message).toContain(FORK_PREVIEWS_DOC);
  });
});

describe('denials', () => {
  const base = { status: 400, site: 'docs', url: 'https://sts.example.com' };

  it('quote the service verbatim and end with the fix and the explain command', () => {
    const error = serviceRefused({ ...base, error: 'invalid_target', description: 'this repository may not deploy site "docs"', claims: { event_name: 'push' } });
    const lines = error.render().split('\n');
    expect(lines[0]).toBe('deploy-sts [denied]: The exchange service at https://sts.example.com refused a token for site "docs" (HTTP 400).');
    expect(lines[1]).toBe('invalid_target: this repository may not deploy site "docs"');
    expect(lines).toContain('  event_name: push');
    expect(lines).toContain('  ref: (absent)');
    expect(lines).toContain(`What this refusal means and how to fix it: ${TROUBLESHOOTING_DOC}`);
    expect(TROUBLESHOOTING_DOC).toBe('https://github.com/deploy-sts/deploy-sts/blob/main/docs/troubleshooting.md');
    expect(lines.at(-2)).toMatch(/^Fix: Compare the claims above/);
    expect(lines.at(-1)).toBe('  deploy-sts policy explain --site docs --policies "${DEPLOY_STS_POLICIES:-policies}" --audience https://sts.example.com --token <file>');
  });

  it('print a complete explain command with the claims as JSON when the token could be decoded', () => {
    const policyClaims = { repository: 'acme/docs', repository_id: '892043217', ref: "refs/heads/it's", aud: 'https://sts.example.com/aud' };
    const error = serviceRefused({ ...base, error: 'invalid_target', description: 'no', claims: { event_name: 'push' }, policyClaims });
    expect(error.render().split('\n').at(-1)).toBe(
      `  printf '%s\\n' '{"repository":"acme/docs","repository_id":"892043217","ref":"refs/heads/it'\\''s","aud":"https://sts.example.com/aud"}' | deploy-sts policy explain --site docs --policies "\${DEPLOY_STS_POLICIES:-policies}" --audience https://sts.example.com/aud --claims -`,
    );
  });

  it('quote every value from the token for the shell', () => {
    expect(shellWord('refs/heads/main')).toBe('refs/heads/main');
    expect(shellWord("$(touch x)'`y`")).toBe("'$(touch x)'\\''`y`'");
    expect(explainCommand('docs', 'https://sts.example.com', { aud: 'a b' })).toContain("--audience 'a b' --claims -");
  });

  it('point an unknown site at the site input', () => {
    const error = serviceRefused({ ...base, site: 'doc', error: 'invalid_target', description: 'site "doc" is not known to this service' });
    expect(error.code).toBe('denied');
    expect(error.fix).toMatch(/^Check the `site` input: the service has no policy for a site "doc"/);
    expect(error.fix).not.toContain('policy explain');
  });

  it('show no claims section when the token could not be decoded', () => {
    const error = serviceRefused({ ...base, error: 'invalid_target', description: 'no' });
    expect(error.render()).not.toContain('carried');
  });

  it('point a too-large request at the scope input', () => {
    const error = serviceRefused({ ...base, status: 413, error: 'request_too_large', description: 'body over 16 KiB' });
    expect(error.fix).toContain('`scope`');
  });
});

describe('transport failures', () => {
  it('say which failure, the URL and how many attempts', () => {
    for (const kind of ['unreachable', 'tls_failure', 'timeout'] as const) {
      const error = transportFailed({ kind, detail: 'something specific', url: 'https://sts.example.com', attempts: 4 });
      expect(error.code).toBe(kind);
      expect(error.problem).toContain('https://sts.example.com');
      expect(error.problem).toContain('something specific (after 4 attempts)');
      expect(error.fix.length).toBeGreaterThan(20);
    }
  });

  it('count one attempt in the singular', () => {
    expect(transportFailed({ kind: 'tls_failure', detail: 'x', url: 'u', attempts: 1 }).problem).toContain('(after 1 attempt)');
  });
});

describe('an unavailable service', () => {
  it('tells rate limiting from an outage', () => {
    expect(serviceUnavailable({ status: 429, url: 'u', attempts: 4 }).fix).toContain('rate limiting');
    expect(serviceUnavailable({ status: 503, url: 'u', attempts: 4, error: 'temporarily_unavailable', description: 'JWKS is unavailable' }).render()).toContain(
      'temporarily_unavailable: JWKS is unavailable',
    );
  });

  it('says when the service asked for a longer wait than the Action gives it', () => {
    const error = serviceUnavailable({ status: 503, url: 'https://sts.example.com', attempts: 1, gaveUp: { reason: 'retry-after', retryAfterMs: 90_500 } });
    expect(error.code).toBe('service_unavailable');
    expect(error.problem).toContain('answered HTTP 503 (after 1 attempt) and asked to be retried in 91 s');
    expect(error.fix).toBe('The service asked to retry in 91 s; re-run the job later.');
  });

  it("says when the step's overall time limit ended the retries", () => {
    const error = serviceUnavailable({ status: 502, url: 'u', attempts: 3, gaveUp: { reason: 'deadline', deadlineMs: 120_000 } });
    expect(error.problem).toContain("answered HTTP 502 on each of 3 attempts, and the step's overall time limit of 120s leaves no time for another");
  });
});

describe('the overall deadline passing', () => {
  it('is a timeout that names the limit and the attempts made', () => {
    const error = deadlinePassed('https://sts.example.com', 120_000, 2);
    expect(error.code).toBe('timeout');
    expect(error.problem).toBe("The exchange service at https://sts.example.com gave no usable answer within the step's overall time limit of 120s (after 2 attempts).");
    expect(deadlinePassed('u', 1_000, 0).problem).toContain('(before the first attempt)');
  });
});

describe('anything unexpected', () => {
  it('becomes an error that asks for a bug report, keeping the message', () => {
    const error = toActionError(new TypeError('boom'));
    expect(error).toBeInstanceOf(ActionError);
    expect(error.code).toBe('internal_error');
    expect(error.problem).toContain('boom');
    expect(error.fix).toContain('bug');
  });

  it('passes ActionErrors through untouched', () => {
    const original = badResponse('u', 'why');
    expect(toActionError(original)).toBe(original);
  });
});
