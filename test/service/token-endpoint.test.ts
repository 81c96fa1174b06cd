import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { exchangeToken, postForm, useIssuerAndService } from '../helpers/service.js';

const running = useIssuerAndService();

const PR_LIKE_EVENTS = ['pull_request_target', 'workflow_run'];

describe('a production deploy from main', () => {
  it('is granted a production token for the site, signed as an RFC 9068 access token', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token());
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 600,
      scope: 'deployments:write',
      site: 'docs',
      context: 'production',
      rule: 'production',
    });
    expect(res.body).not.toHaveProperty('refresh_token');
    const token = String(res.body.access_token);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${running.svc.url}/.well-known/jwks.json`)), {
      issuer: running.svc.url,
      audience: 'deploy-api',
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({
      sub: 'site:docs',
      site: 'docs',
      org: 'acme',
      context: 'production',
      scope: 'deployments:write',
      act: { repository: 'acme/docs', repository_id: '892043217', event_name: 'push', ref: 'refs/heads/main' },
    });
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it('narrows the scope on request, and refuses a scope the rule does not grant', async () => {
    const narrowed = await exchangeToken(running.svc.url, await running.issuer.token(), 'docs', { scope: 'deployments:read' });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('deployments:read');

    const wider = await exchangeToken(running.svc.url, await running.issuer.token(), 'docs', { scope: 'deployments:write sites:read' });
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');
    expect(wider.body).not.toHaveProperty('access_token');
  });

  it('accepts the same request as JSON and with audience= instead of resource=', async () => {
    const response = await fetch(`${running.svc.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: await running.issuer.token(),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        audience: 'site:docs',
      }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { context: string }).context).toBe('production');
  });
});

describe('fork pull requests and other untrusted events', () => {
  for (const event of PR_LIKE_EVENTS) {
    it(`${event} gets a preview token, never production — even with the production environment and main`, async () => {
      // The pinned preview workflows of examples/policies/docs.yml, from main, in the production environment.
      const workflow = `acme/docs/.github/workflows/${event === 'workflow_run' ? 'preview-deploy' : 'preview'}.yml@refs/heads/main`;
      const res = await exchangeToken(running.svc.url, await running.issuer.token({ event_name: event, job_workflow_ref: workflow }));
      expect(res.status).toBe(200);
      expect(res.body.context).toBe('preview');
      expect(res.body.rule).toBe('previews');
    });
  }

  for (const event of ['pull_request', 'issue_comment', 'pull_request_review', 'some_future_event']) {
    it(`${event} is denied (the example policy grants previews only to pull_request_target and workflow_run)`, async () => {
      const res = await exchangeToken(running.svc.url, await running.issuer.token({ event_name: event }));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_target');
      expect(res.body).not.toHaveProperty('access_token');
    });
  }
});

describe('each condition of the production rule denies when it fails', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a feature branch', { ref: 'refs/heads/feature' }, /rule "production": ref "refs\/heads\/feature"/],
    ['a look-alike branch', { ref: 'refs/heads/main-evil' }, /ref "refs\/heads\/main-evil"/],
    ['another environment', { environment: 'staging' }, /environment "staging"/],
    ['no environment', { environment: undefined }, /environment/],
    ['an unpinned workflow', { job_workflow_ref: 'acme/docs/.github/workflows/other.yml@refs/heads/main' }, /job_workflow_ref/],
    ['a workflow from a branch', { job_workflow_ref: 'acme/docs/.github/workflows/deploy.yml@refs/heads/dev' }, /job_workflow_ref/],
  ];
  for (const [name, claims, message] of cases) {
    it(`${name}: denied, and the description names the failed condition`, async () => {
      const res = await exchangeToken(running.svc.url, await running.issuer.token(claims));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_target');
      expect(String(res.body.error_description)).toMatch(message);
      expect(String(res.body.error_description)).toMatch(/^site "docs": /);
    });
  }
});

describe('denials to another repository', () => {
  it('say only that the repository may not deploy the site, with no policy details', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token({ repository: 'mallory/docs', repository_id: '666', repository_owner: 'mallory', repository_owner_id: '667' }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_target');
    expect(String(res.body.error_description)).toContain('may not deploy site "docs"');
    expect(String(res.body.error_description)).not.toMatch(/refs\/heads|production|rule/);
  });

  it('refuse a re-created repository: same name, new repository_id', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token({ repository_id: '999999999' }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_target');
  });

  it('refuse an unknown site', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token(), 'nope');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_target');
    expect(String(res.body.error_description)).toContain('"nope"');
  });
});

describe('replay', () => {
  it('accepts a subject token once', async () => {
    const token = await running.issuer.token();
    expect((await exchangeToken(running.svc.url, token)).status).toBe(200);
    const again = await exchangeToken(running.svc.url, token);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_request');
    expect(String(again.body.error_description)).toContain('already exchanged');
  });
});

describe('subject token verification', () => {
  it('refuses a token for another audience and says which one is expected', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token({ aud: 'https://github.com/acme' }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(String(res.body.error_description)).toContain(running.svc.audience);
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await exchangeToken(running.svc.url, await running.issuer.token({ iat: now - 500, nbf: now - 500, exp: now - 200 }));
    expect(res.status).toBe(400);
    expect(String(res.body.error_description)).toContain('expired');
  });

  it('refuses a token signed with a key that is not the issuer\'s', async () => {
    const res = await exchangeToken(running.svc.url, await running.issuer.token({}, { foreignKey: true }));
    expect(res.status).toBe(400);
    expect(String(res.body.error_description)).toContain('signature');
  });
});

describe('introspection and revocation', () => {
  it('shows a live token to its holder, and inactive after revocation', async () => {
    const token = String((await exchangeToken(running.svc.url, await running.issuer.token())).body.access_token);
    const live = await postForm(`${running.svc.url}/introspect`, { token }, { authorization: `Bearer ${token}` });
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ active: true, site: 'docs', context: 'production', scope: 'deployments:write' });

    const revoked = await postForm(`${running.svc.url}/revoke`, { token });
    expect(revoked.status).toBe(200);
    const after = await postForm(`${running.svc.url}/introspect`, { token }, { authorization: `Bearer ${token}` });
    expect(after.body).toEqual({ active: false });
  });

  it('refuses introspection without credentials', async () => {
    const token = String((await exchangeToken(running.svc.url, await running.issuer.token())).body.access_token);
    const res = await postForm(`${running.svc.url}/introspect`, { token });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('answers 200 to revoking a token it never issued', async () => {
    const res = await postForm(`${running.svc.url}/revoke`, { token: 'not-a-token' });
    expect(res.status).toBe(200);
  });
});

describe('the protocol surface', () => {
  it('publishes RFC 8414 metadata with the subject token audience', async () => {
    const meta = (await (await fetch(`${running.svc.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({
      issuer: running.svc.url,
      token_endpoint: `${running.svc.url}/token`,
      jwks_uri: `${running.svc.url}/.well-known/jwks.json`,
      introspection_endpoint: `${running.svc.url}/introspect`,
      revocation_endpoint: `${running.svc.url}/revoke`,
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      subject_token_audience: running.svc.audience,
    });
  });

  it('publishes only public keys', async () => {
    const jwks = (await (await fetch(`${running.svc.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) expect(key).not.toHaveProperty('d');
  });

  it('answers 405 with Allow: POST to GET /token', async () => {
    const res = await fetch(`${running.svc.url}/token`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('answers 413 to a body over the limit, as JSON', async () => {
    const res = await postForm(`${running.svc.url}/token`, { grant_type: 'x', subject_token: 'a'.repeat(64 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('invalid_request');
  });

  it('is healthy and ready', async () => {
    expect((await fetch(`${running.svc.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${running.svc.url}/readyz`)).status).toBe(200);
  });

  it('records every decision in the audit log, and never a token', async () => {
    const rows = await running.svc.service.storage.listAudit({ limit: 1000 });
    expect(rows.some((r) => r.result === 'granted' && r.tokenJti)).toBe(true);
    expect(rows.some((r) => r.result === 'denied' && r.reason === 'replay')).toBe(true);
    for (const r of rows) expect(JSON.stringify(r)).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    for (const line of running.svc.logs) expect(line).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });
});
