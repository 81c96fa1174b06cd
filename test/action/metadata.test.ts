import { afterEach, describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { audienceProblem, discoverAudience } from '../../action/metadata.js';
import { closedPort, json, startServer, text, type LoopbackServer, type Reply } from './support/loopback.js';

const servers: LoopbackServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(...replies: Reply[]) {
  const server = await startServer(...replies);
  servers.push(server);
  return server;
}

const retry = { sleep: async () => {}, random: () => 0, maxAttempts: 3 };

describe('the default audience', () => {
  it("is what the service's RFC 8414 metadata advertises", async () => {
    const server = await serve(json(200, { issuer: 'x', token_endpoint: 'x/token', subject_token_audience: 'https://127.0.0.1/sts' }));
    expect(await discoverAudience(new URL(server.url), { retry })).toEqual({ audience: 'https://127.0.0.1/sts', source: 'metadata' });
    expect(server.received[0]!.path).toBe('/.well-known/oauth-authorization-server');
  });

  it('is the url when the metadata advertises none', async () => {
    const server = await serve(json(200, { issuer: 'x' }));
    expect(await discoverAudience(new URL(`${server.url}/`), { retry })).toEqual({ audience: server.url, source: 'url' });
  });

  it('is the url when there is no metadata', async () => {
    const server = await serve(text(404, 'no'));
    expect((await discoverAudience(new URL(server.url), { retry })).source).toBe('url');
  });

  it('waits out a 503 rather than guessing', async () => {
    const server = await serve(json(503, {}), json(200, { subject_token_audience: 'https://127.0.0.1/aud' }));
    expect((await discoverAudience(new URL(server.url), { retry })).audience).toBe('https://127.0.0.1/aud');
  });

  it('fails as unreachable when the service is down', async () => {
    const url = new URL(`http://127.0.0.1:${await closedPort()}`);
    const error = await discoverAudience(url, { retry }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionError);
    expect((error as ActionError).code).toBe('unreachable');
    expect((error as ActionError).problem).toContain('after 3 attempts');
  });
});

describe('an advertised audience', () => {
  it('is used when it is the service URL itself', async () => {
    const server = await serve((req, res, i) => json(200, { subject_token_audience: `http://${req.headers.host}` })(req, res, i));
    expect(await discoverAudience(new URL(server.url), { retry })).toEqual({ audience: server.url, source: 'metadata' });
  });

  it('is ignored, with the reason, when it names another host', async () => {
    const server = await serve(json(200, { subject_token_audience: 'https://vault.example.com' }));
    expect(await discoverAudience(new URL(server.url), { retry })).toEqual({
      audience: server.url,
      source: 'url',
      ignored: { advertised: 'https://vault.example.com', reason: "its host vault.example.com is not the service's host 127.0.0.1" },
    });
  });

  it('is ignored when it is not an https:// URL or carries control characters', async () => {
    for (const [advertised, reason] of [
      ['aud', 'it is not a URL'],
      ['ftp://127.0.0.1/aud', 'it is not an https:// URL'],
      ['https://127.0.0.1/\n::warning::forged', 'it contains control characters'],
    ] as const) {
      const server = await serve(json(200, { subject_token_audience: advertised }));
      const choice = await discoverAudience(new URL(server.url), { retry });
      expect(choice).toEqual({ audience: server.url, source: 'url', ignored: { advertised, reason } });
    }
  });

  describe('for https://sts.example.com', () => {
    const url = new URL('https://sts.example.com');
    it('may be any https:// URL on that host', () => {
      for (const ok of ['https://sts.example.com', 'https://sts.example.com/', 'https://STS.example.com/deploy', 'https://sts.example.com:8443/aud']) {
        expect(audienceProblem(ok, url), ok).toBeUndefined();
      }
    });
    it('may not name another host, a parent or a sibling, nor use http:// off loopback', () => {
      for (const bad of ['https://example.com', 'https://evil.sts.example.com', 'https://sts.example.com.evil.net', 'http://sts.example.com', 'https://u:p@sts.example.com', 'sts.example.com', 'deploy-sts']) {
        expect(audienceProblem(bad, url), bad).toBeDefined();
      }
    });
  });

  it('may be http:// on loopback for a loopback service', () => {
    expect(audienceProblem('http://127.0.0.1:8080', new URL('http://127.0.0.1:9000'))).toBeUndefined();
    expect(audienceProblem('http://[::1]:8080/aud', new URL('http://[::1]:9000'))).toBeUndefined();
  });
});
