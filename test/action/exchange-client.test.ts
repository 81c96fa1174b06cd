import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDeadline } from '../../action/deadline.js';
import { ActionError } from '../../action/errors.js';
import { exchangeToken, GRANT_TYPE, ID_TOKEN_TYPE, type ExchangeClientOptions, type ExchangeRequest } from '../../action/exchange-client.js';
import type { RetryPolicy } from '../../action/retry.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { fakeClock } from './support/fake-clock.js';
import {
  canListenOn,
  closedPort,
  hang,
  json,
  reset,
  startDroppingListener,
  startServer,
  startServerOn,
  startStalledListener,
  text,
  type LoopbackServer,
  type Reply,
} from './support/loopback.js';

const ACCESS_TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJzaXRlIjoiZG9jcyJ9.ZHN0c190ZXN0X2FjY2Vzc190b2tlbg';

function issued(overrides: Record<string, unknown> = {}): Reply {
  return json(200, {
    access_token: ACCESS_TOKEN,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 600,
    scope: 'deploy:write',
    site: 'docs',
    context: 'production',
    rule: 'production',
    ...overrides,
  });
}

const unavailable = json(503, { error: 'temporarily_unavailable', error_description: 'storage is unavailable; no token was issued. Try again shortly.' });

let issuer: TestIssuer;
const servers: LoopbackServer[] = [];

beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => {
  await issuer.close();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(...replies: Reply[]): Promise<LoopbackServer> {
  const server = await startServer(...replies);
  servers.push(server);
  return server;
}

/** Routes `/revoke` to `revoke` and everything else to `token`. */
function byPath(token: Reply, revoke: Reply = json(200, {})): Reply {
  return (req, res, i) => (req.path.endsWith('/revoke') ? revoke(req, res, i) : token(req, res, i));
}

const hasIpv6Loopback = await canListenOn('::1');

interface Harness {
  options: ExchangeClientOptions;
  /** Subject tokens handed out, in order. */
  subjectTokens: string[];
  masked: string[];
  sleeps: number[];
  log: string[];
}

function harness(url: string, retry: Partial<RetryPolicy> = {}, claims: Record<string, unknown> = {}): Harness {
  const h: Harness = { subjectTokens: [], masked: [], sleeps: [], log: [], options: undefined as never };
  h.options = {
    url: new URL(url),
    getIdToken: async (audience) => {
      const token = await issuer.token({ aud: audience, ...claims });
      h.subjectTokens.push(token);
      return token;
    },
    mask: (secret) => h.masked.push(secret),
    timeouts: { connectMs: 2_000, totalMs: 5_000 },
    retry: {
      maxAttempts: 4,
      random: () => 0.5,
      sleep: async (ms) => {
        h.sleeps.push(ms);
      },
      ...retry,
    },
    log: (line) => h.log.push(line),
  };
  return h;
}

const request: ExchangeRequest = { site: 'docs', scope: [], audience: 'https://sts.example.test' };

async function failure(promise: Promise<unknown>): Promise<ActionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ActionError);
  return error as ActionError;
}

describe('a successful exchange', () => {
  it('posts an RFC 8693 form with the OIDC token, the site as resource and the scope', async () => {
    const server = await serve(issued());
    const h = harness(server.url);
    await exchangeToken({ ...request, scope: ['deploy:write', 'deploy:read'] }, h.options);

    expect(server.received).toHaveLength(1);
    const sent = server.received[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/token');
    expect(sent.form.get('grant_type')).toBe(GRANT_TYPE);
    expect(sent.form.get('subject_token')).toBe(h.subjectTokens[0]);
    expect(sent.form.get('subject_token_type')).toBe(ID_TOKEN_TYPE);
    expect(sent.form.get('resource')).toBe('site:docs');
    expect(sent.form.get('scope')).toBe('deploy:write deploy:read');
  });

  it('asks for the OIDC token with the requested audience', async () => {
    const server = await serve(issued());
    const h = harness(server.url);
    await exchangeToken(request, h.options);
    const claims = JSON.parse(Buffer.from(h.subjectTokens[0]!.split('.')[1]!, 'base64url').toString()) as { aud: string };
    expect(claims.aud).toBe('https://sts.example.test');
  });

  it('sends no scope when none is requested (the rule grants its default)', async () => {
    const server = await serve(issued());
    await exchangeToken(request, harness(server.url).options);
    expect(server.received[0]!.form.has('scope')).toBe(false);
  });

  it('keeps a path prefix of the service URL', async () => {
    const server = await serve(issued());
    await exchangeToken(request, harness(`${server.url}/sts/`).options);
    expect(server.received[0]!.path).toBe('/sts/token');
  });

  it('returns the token, its context, rule, scope and an expiry no later than the real one', async () => {
    const server = await serve(issued({ context: 'preview', rule: 'previews', scope: 'deploy:write preview:write' }));
    const before = Date.now();
    const token = await exchangeToken(request, harness(server.url).options);
    const after = Date.now();
    expect(token).toMatchObject({ accessToken: ACCESS_TOKEN, context: 'preview', rule: 'previews', site: 'docs', expiresIn: 600, attempts: 1 });
    expect(token.scope).toEqual(['deploy:write', 'preview:write']);
    expect(token.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 600_000);
    expect(token.expiresAt.getTime()).toBeLessThanOrEqual(after + 600_000);
  });

  it('masks the token as soon as it is parsed', async () => {
    const server = await serve(issued());
    const h = harness(server.url);
    await exchangeToken(request, h.options);
    expect(h.masked).toEqual([ACCESS_TOKEN]);
  });
});

describe('retries', () => {
  it('gets a fresh OIDC token for every attempt (a subject token is accepted once)', async () => {
    const server = await serve(unavailable, unavailable, issued());
    const h = harness(server.url);
    const token = await exchangeToken(request, h.options);

    expect(token.attempts).toBe(3);
    expect(server.received).toHaveLength(3);
    const sentSubjects = server.received.map((r) => r.form.get('subject_token'));
    expect(sentSubjects).toEqual(h.subjectTokens);
    expect(new Set(sentSubjects).size).toBe(3);
  });

  it('retries 500, 502 and 429 as well as 503', async () => {
    const server = await serve(json(500, {}), text(502, 'bad gateway'), json(429, { error: 'rate_limited' }), issued());
    const token = await exchangeToken(request, harness(server.url).options);
    expect(token.attempts).toBe(4);
  });

  it('backs off exponentially with jitter when the server gives no Retry-After', async () => {
    const server = await serve(unavailable, unavailable, unavailable, issued());
    const h = harness(server.url, { baseDelayMs: 1_000, maxDelayMs: 60_000, random: () => 0.5 });
    await exchangeToken(request, h.options);
    // equal jitter with random 0.5: 3/4 of 1s, 2s, 4s
    expect(h.sleeps).toEqual([750, 1_500, 3_000]);
  });

  it('honours Retry-After in seconds', async () => {
    const server = await serve(json(429, { error: 'rate_limited' }, { 'retry-after': '7' }), issued());
    const h = harness(server.url);
    await exchangeToken(request, h.options);
    expect(h.sleeps).toEqual([7_000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const server = await serve(json(503, {}, { 'retry-after': 'Tue, 01 Jan 2030 00:00:12 GMT' }), issued());
    const h = harness(server.url, { now: () => now });
    await exchangeToken(request, h.options);
    expect(h.sleeps).toEqual([12_000]);
  });

  it('stops, rather than retry early, when Retry-After is longer than the Action waits', async () => {
    const server = await serve(json(503, {}, { 'retry-after': '86400' }), issued());
    const h = harness(server.url, { retryAfterCapMs: 20_000 });
    const error = await failure(exchangeToken(request, h.options));
    expect(h.sleeps).toEqual([]);
    expect(server.received).toHaveLength(1);
    expect(h.subjectTokens).toHaveLength(1);
    expect(error.code).toBe('service_unavailable');
    expect(error.render()).toMatch(/the service asked to retry in 86400 s; re-run the job later/i);
  });

  it('says in the log which attempt failed and how long it waits', async () => {
    const server = await serve(unavailable, issued());
    const h = harness(server.url);
    await exchangeToken(request, h.options);
    expect(h.log.join('\n')).toMatch(/Attempt 1 of 4 .* failed \(HTTP 503\); retrying in 0\.4s/);
  });

  it('gives up after the last attempt and reports the service unavailable with the count', async () => {
    const server = await serve(unavailable);
    const h = harness(server.url, { maxAttempts: 3 });
    const error = await failure(exchangeToken(request, h.options));
    expect(server.received).toHaveLength(3);
    expect(error.code).toBe('service_unavailable');
    expect(error.render()).toContain(`at ${server.url} answered HTTP 503 on each of 3 attempts`);
    expect(error.render()).toContain('temporarily_unavailable: storage is unavailable');
  });
});

describe('the overall deadline', () => {
  function clocked(url: string, deadlineMs: number, retry: Partial<RetryPolicy> = {}) {
    const clock = fakeClock();
    const h = harness(url, { now: clock.now, sleep: clock.sleep, maxAttempts: 10, ...retry });
    h.options.deadline = startDeadline(deadlineMs, clock.now);
    return { h, clock };
  }

  it('ends the retries when the next backoff would pass it, and says so', async () => {
    const server = await serve(unavailable);
    const { h, clock } = clocked(server.url, 10_000, { baseDelayMs: 4_000, maxDelayMs: 60_000, random: () => 0.5 });
    const error = await failure(exchangeToken(request, h.options));
    // 3 s and 6 s fit in 10 s; the next 12 s would not.
    expect(clock.sleeps).toEqual([3_000, 6_000]);
    expect(server.received).toHaveLength(3);
    expect(error.code).toBe('service_unavailable');
    expect(error.problem).toContain("answered HTTP 503 on each of 3 attempts, and the step's overall time limit of 10s leaves no time for another");
  });

  it('does not retry early when Retry-After is longer than the time left', async () => {
    const server = await serve(json(503, { error: 'temporarily_unavailable' }, { 'retry-after': '30' }), issued());
    const { h, clock } = clocked(server.url, 10_000);
    const error = await failure(exchangeToken(request, h.options));
    expect(clock.sleeps).toEqual([]);
    expect(h.subjectTokens).toHaveLength(1);
    expect(error.code).toBe('service_unavailable');
    expect(error.render()).toMatch(/the service asked to retry in 30 s; re-run the job later/i);
    expect(error.render()).toContain('temporarily_unavailable');
  });

  it('ends the retries of a network failure when the next backoff would pass it', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const { h, clock } = clocked(url, 2_000, { baseDelayMs: 1_000, random: () => 0.5 });
    const error = await failure(exchangeToken(request, h.options));
    expect(clock.sleeps).toEqual([750]);
    expect(error.code).toBe('unreachable');
    expect(error.problem).toContain("connection refused (ECONNREFUSED); the step's overall time limit of 2s leaves no time for another attempt (after 2 attempts)");
  });

  it("cuts an attempt's total timeout to the time left", async () => {
    const server = await serve(hang);
    const h = harness(server.url);
    h.options.timeouts = { connectMs: 2_000, totalMs: 30_000 };
    h.options.deadline = startDeadline(300);
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('timeout');
    expect(error.problem).toContain("gave no usable answer within the step's overall time limit of 0.3s (after 1 attempt)");
    expect(server.received).toHaveLength(1);
  });

  it('makes no attempt once it has passed', async () => {
    const server = await serve(issued());
    const clock = fakeClock();
    const h = harness(server.url, { now: clock.now, sleep: clock.sleep });
    h.options.deadline = startDeadline(1_000, clock.now);
    await clock.sleep(1_000);
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('timeout');
    expect(error.problem).toContain('before the first attempt');
    expect(server.received).toHaveLength(0);
    expect(h.subjectTokens).toHaveLength(0);
  });
});

describe('client errors are never retried', () => {
  for (const [status, error] of [
    [400, 'invalid_target'],
    [400, 'invalid_request'],
    [400, 'invalid_scope'],
    [413, 'request_too_large'],
    [404, 'not_found'],
    [401, 'invalid_client'],
  ] as const) {
    it(`makes one attempt on ${status} ${error}`, async () => {
      const server = await serve(json(status, { error, error_description: `because ${error}` }));
      const h = harness(server.url);
      const failed = await failure(exchangeToken(request, h.options));
      expect(server.received).toHaveLength(1);
      expect(h.subjectTokens).toHaveLength(1);
      expect(h.sleeps).toEqual([]);
      expect(failed.render()).toContain(`${error}: because ${error}`);
    });
  }
});

describe('a denial', () => {
  const description = 'site "docs": rule "production": ref "refs/heads/feature" is not one of ["refs/heads/main"]';

  it('shows the service error verbatim and the claims the OIDC token carried, never the token', async () => {
    const server = await serve(json(400, { error: 'invalid_target', error_description: description }));
    const h = harness(server.url, {}, { ref: 'refs/heads/feature', event_name: 'push' });
    const error = await failure(exchangeToken(request, h.options));
    const message = error.render();

    expect(error.code).toBe('denied');
    expect(message).toContain(`invalid_target: ${description}`);
    expect(message).toContain('  event_name: push');
    expect(message).toContain('  ref: refs/heads/feature');
    expect(message).toContain('  job_workflow_ref: acme/docs/.github/workflows/deploy.yml@refs/heads/main');
    expect(message).toContain('  workflow_ref: acme/docs/.github/workflows/deploy.yml@refs/heads/main');
    expect(message).toContain('  environment: production');
    expect(message).toContain('  repository: acme/docs');
    expect(message).toContain('  repository_id: 892043217');
    expect(message).toMatch(/^  printf '%s\\n' '\{.*"ref":"refs\/heads\/feature".*\}' \| deploy-sts policy explain --site docs --policies .* --claims -$/m);
    expect(message).not.toContain(h.subjectTokens[0]);
  });

  it('says when the token carried no environment', async () => {
    const server = await serve(json(400, { error: 'invalid_target', error_description: description }));
    const error = await failure(exchangeToken(request, harness(server.url, {}, { environment: undefined }).options));
    expect(error.render()).toContain('  environment: (absent)');
  });

  it('points a scope denial at the scope input', async () => {
    const server = await serve(json(400, { error: 'invalid_scope', error_description: 'rule "previews" does not grant "deploy:production"' }));
    const error = await failure(exchangeToken({ ...request, scope: ['deploy:production'] }, harness(server.url).options));
    expect(error.code).toBe('denied');
    expect(error.fix).toContain('`scope` input');
  });

  it('points an audience mismatch at the audience input', async () => {
    const server = await serve(json(400, { error: 'invalid_request', error_description: 'subject_token: audience "x" is not "https://sts.example.test"' }));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('rejected');
    expect(error.fix).toContain('`audience` input');
  });

  it("shows the service's words on one line, so they cannot forge a workflow command", async () => {
    const server = await serve(json(400, { error: 'invalid_target', error_description: 'no rule matched\n::error::forged\r\u2028x' }));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.render()).toContain('invalid_target: no rule matched ::error::forged  x');
    expect(error.render()).not.toMatch(/\n::error::/);
  });

  it('says so when a 4xx is not an OAuth error at all', async () => {
    const server = await serve(text(404, '<html>not here</html>'));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('rejected');
    expect(error.render()).toContain('http_404');
    expect(error.render()).not.toContain('<html>');
  });
});

describe('unusable answers', () => {
  it('refuses a 200 that is not a token response, after masking any token in it', async () => {
    const server = await serve(json(200, { access_token: 'half-a-response', token_type: 'Bearer' }));
    const h = harness(server.url);
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('bad_response');
    expect(h.masked).toEqual(['half-a-response']);
    expect(error.render()).not.toContain('half-a-response');
  });

  it('refuses a token for another site', async () => {
    const server = await serve(issued({ site: 'blog' }));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('bad_response');
    expect(error.problem).toContain('site "blog"');
  });

  it('revokes a token issued for another site before failing', async () => {
    const server = await serve(byPath(issued({ site: 'blog' })));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('bad_response');
    expect(server.received.map((r) => r.path)).toEqual(['/token', '/revoke']);
    expect(server.received[1]!.form.get('token')).toBe(ACCESS_TOKEN);
    expect(server.received[1]!.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(error.render()).toContain('The Action revoked the token the service issued with this answer.');
    expect(error.render()).not.toContain(ACCESS_TOKEN);
  });

  it('revokes the token of a malformed answer before failing', async () => {
    const server = await serve(byPath(json(200, { access_token: ACCESS_TOKEN, token_type: 'Bearer', site: 'docs' })));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('bad_response');
    expect(server.received.map((r) => r.path)).toEqual(['/token', '/revoke']);
    expect(server.received[1]!.form.get('token')).toBe(ACCESS_TOKEN);
  });

  it('still fails, saying the token stays valid, when that revocation fails', async () => {
    const server = await serve(byPath(issued({ site: 'blog' }), json(401, { error: 'invalid_token' })));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('bad_response');
    expect(error.render()).toContain(`could not revoke the token the service issued with this answer (the service answered HTTP 401 at ${server.url}/revoke)`);
  });

  it('refuses, and revokes, a token whose rule or scope has control characters', async () => {
    for (const field of ['rule', 'scope'] as const) {
      const server = await serve(byPath(issued({ [field]: 'production\n::warning::forged' })));
      const h = harness(server.url);
      const error = await failure(exchangeToken(request, h.options));
      expect(error.code).toBe('bad_response');
      expect(error.problem).toContain(`without a valid ${field}`);
      expect(h.masked).toEqual([ACCESS_TOKEN]);
      expect(server.received.map((r) => r.path)).toEqual(['/token', '/revoke']);
    }
  });

  describe('strict shapes for everything copied into outputs and environment variables', () => {
    const cases: [string, unknown, string][] = [
      ['access_token', 'not-a-jws', 'a compact JWS'],
      ['access_token', 'a.b', 'a compact JWS'],
      ['access_token', 'eyJh.eyJz.c2ln.ZW5j.dGFn', 'a compact JWS'],
      ['access_token', 'eyJh.eyJz.c2ln=', 'a compact JWS'],
      ['access_token', 'eyJh.eyJz.c2ln $(id)', 'a compact JWS'],
      ['rule', 'prod uction', 'a rule name'],
      ['rule', '-production', 'a rule name'],
      ['rule', 'r'.repeat(65), 'a rule name'],
      ['rule', 'production%0A::warning::', 'a rule name'],
      ['scope', 'deployments:write;curl evil', 'space-separated permissions'],
      ['scope', 'deployments:write  sites:read', 'space-separated permissions'],
      ['scope', 'Deployments:Write', 'space-separated permissions'],
      ['scope', 'deployments:write $GITHUB_ENV', 'space-separated permissions'],
      ['context', 'production ', 'production or preview'],
      ['expires_in', 1.5, 'a whole number of seconds'],
      ['expires_in', 0, 'a whole number of seconds'],
      ['expires_in', 3601, 'a whole number of seconds'],
      ['expires_in', '600', 'a whole number of seconds'],
    ];
    for (const [field, value, expected] of cases) {
      it(`refuses, and revokes, ${field} ${JSON.stringify(value)}`, async () => {
        const server = await serve(byPath(issued({ [field]: value })));
        const h = harness(server.url);
        const error = await failure(exchangeToken(request, h.options));
        expect(error.code).toBe('bad_response');
        expect(error.problem).toContain(`without a valid ${field} (${expected}`);
        if (field !== 'access_token') expect(server.received.map((r) => r.path)).toEqual(['/token', '/revoke']);
      });
    }

    it('refuses a site that is not a slug', async () => {
      const server = await serve(byPath(issued({ site: 'docs/../blog' })));
      const error = await failure(exchangeToken(request, harness(server.url).options));
      expect(error.problem).toContain('without a valid site (a site slug');
    });

    it('accepts the service\'s own shapes', async () => {
      const server = await serve(issued({ scope: 'deployments:write sites:read', rule: 'fork-previews.v2_x', expires_in: 3600, context: 'preview' }));
      const token = await exchangeToken(request, harness(server.url).options);
      expect(token).toMatchObject({ scope: ['deployments:write', 'sites:read'], rule: 'fork-previews.v2_x', expiresIn: 3600, context: 'preview' });
    });
  });

  it('refuses an oversized answer as an unusable answer, without retrying', async () => {
    const server = await serve(text(200, 'x'.repeat(300 * 1024)));
    const h = harness(server.url);
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('bad_response');
    expect(error.problem).toContain('the answer (HTTP 200) is larger than 256 KiB');
    expect(server.received).toHaveLength(1);
  });

  it('does not follow a redirect', async () => {
    const target = await serve(issued());
    const server = await serve(json(307, {}, { location: `${target.url}/token` }));
    const error = await failure(exchangeToken(request, harness(server.url).options));
    expect(error.code).toBe('bad_response');
    expect(target.received).toHaveLength(0);
  });
});

describe('network failures', () => {
  it('retries a refused connection and then reports the service unreachable with the URL and attempts', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const h = harness(url, { maxAttempts: 3 });
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('unreachable');
    expect(error.render()).toContain(`${url} is unreachable: connection refused (ECONNREFUSED) (after 3 attempts)`);
    expect(h.subjectTokens).toHaveLength(3);
  });

  it('retries a dropped connection', async () => {
    const server = await serve(reset, issued());
    const token = await exchangeToken(request, harness(server.url).options);
    expect(token.attempts).toBe(2);
  });

  it('stops waiting at the total timeout and says so', async () => {
    const server = await serve(hang);
    const h = harness(server.url, { maxAttempts: 2 });
    h.options.timeouts = { connectMs: 2_000, totalMs: 300 };
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('timeout');
    expect(error.render()).toContain('no complete answer within the total timeout of 0.3s (after 2 attempts)');
    expect(server.received).toHaveLength(2);
  });

  it('does not apply the connect timeout to a slow answer on a connected socket', async () => {
    const slow: Reply = (req, res, i) => setTimeout(() => issued()(req, res, i), 400);
    const server = await serve(slow);
    const h = harness(server.url);
    h.options.timeouts = { connectMs: 100, totalMs: 10_000 };
    const token = await exchangeToken(request, h.options);
    expect(token.attempts).toBe(1);
  });

  it('stops connecting at the connect timeout and says so', async () => {
    const stalled = await startStalledListener();
    try {
      const h = harness(`http://127.0.0.1:${stalled.port}`, { maxAttempts: 2 });
      h.options.timeouts = { connectMs: 200, totalMs: 10_000 };
      const error = await failure(exchangeToken(request, h.options));
      expect(error.code).toBe('timeout');
      expect(error.render()).toContain('could not connect within the connect timeout of 0.2s (after 2 attempts)');
    } finally {
      await stalled.close();
    }
  });

  it('reports a TLS failure without retrying it', async () => {
    // https:// to a plain-HTTP listener: the handshake fails.
    const server = await serve(issued());
    const h = harness(server.url.replace('http://', 'https://'));
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('tls_failure');
    expect(error.render()).toMatch(/TLS with the exchange service at https:\/\/127\.0\.0\.1:\d+ failed: .+ \(after 1 attempt\)/);
    expect(h.subjectTokens).toHaveLength(1);
  });

  it('retries a connection dropped during the TLS handshake as a network failure, not a TLS one', async () => {
    const listener = await startDroppingListener();
    try {
      const url = `https://127.0.0.1:${listener.port}`;
      const h = harness(url, { maxAttempts: 3 });
      const error = await failure(exchangeToken(request, h.options));
      expect(error.code).toBe('unreachable');
      expect(error.render()).toContain(`${url} is unreachable: connection reset by the other end during the TLS handshake (ECONNRESET) (after 3 attempts)`);
      expect(listener.connections).toBe(3);
      expect(h.subjectTokens).toHaveLength(3);
    } finally {
      await listener.close();
    }
  });

  it.skipIf(!hasIpv6Loopback)('reaches a service on the IPv6 loopback, http://[::1]', async () => {
    const server = await startServerOn('::1', issued());
    servers.push(server);
    expect(server.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const token = await exchangeToken(request, harness(server.url).options);
    expect(token.attempts).toBe(1);
    expect(server.received[0]!.headers.host).toBe(`[::1]:${server.port}`);
  });

  it('gives up on an OIDC token endpoint that never answers, saying so', async () => {
    const runner = await serve(hang);
    const server = await serve(issued());
    const h = harness(server.url);
    h.options.getIdToken = async (audience) => {
      const answer = await fetch(`${runner.url}/idtoken?audience=${encodeURIComponent(audience)}`, { headers: { authorization: 'Bearer request-token' } });
      return ((await answer.json()) as { value: string }).value;
    };
    h.options.idTokenTimeoutMs = 200;
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('id_token_failed');
    expect(error.problem).toContain("it gave no token within 0.2s (the runner's ACTIONS_ID_TOKEN_REQUEST_URL did not answer in time)");
    expect(runner.received).toHaveLength(1);
    expect(server.received).toHaveLength(0);
  });

  it('reports a failing OIDC token endpoint as such', async () => {
    const server = await serve(issued());
    const h = harness(server.url);
    h.options.getIdToken = async () => {
      throw new Error('Failed to get ID Token. Error Code : 500');
    };
    const error = await failure(exchangeToken(request, h.options));
    expect(error.code).toBe('id_token_failed');
    expect(server.received).toHaveLength(0);
  });
});
