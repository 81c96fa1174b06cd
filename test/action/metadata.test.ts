import { afterEach, describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { discoverAudience } from '../../action/metadata.js';
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
    const server = await serve(json(200, { issuer: 'x', token_endpoint: 'x/token', subject_token_audience: 'https://sts.example.com' }));
    expect(await discoverAudience(new URL(server.url), { retry })).toEqual({ audience: 'https://sts.example.com', source: 'metadata' });
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
    const server = await serve(json(503, {}), json(200, { subject_token_audience: 'aud' }));
    expect((await discoverAudience(new URL(server.url), { retry })).audience).toBe('aud');
  });

  it('fails as unreachable when the service is down', async () => {
    const url = new URL(`http://127.0.0.1:${await closedPort()}`);
    const error = await discoverAudience(url, { retry }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionError);
    expect((error as ActionError).code).toBe('unreachable');
    expect((error as ActionError).problem).toContain('after 3 attempts');
  });
});
