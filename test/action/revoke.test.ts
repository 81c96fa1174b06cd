import { afterEach, describe, expect, it } from 'vitest';
import { revokeToken } from '../../action/revoke.js';
import { closedPort, json, startServer, type LoopbackServer } from './support/loopback.js';

const servers: LoopbackServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const noWait = { sleep: async () => {}, random: () => 0 };

describe('revoking the token when the job ends', () => {
  it('posts RFC 7009 form data authenticated with the token itself', async () => {
    const server = await startServer(json(200, {}));
    servers.push(server);
    const outcome = await revokeToken(new URL(server.url), 'dsts_token', { retry: noWait });
    expect(outcome).toEqual({ revoked: true });
    const sent = server.received[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/revoke');
    expect(sent.headers.authorization).toBe('Bearer dsts_token');
    expect(sent.form.get('token')).toBe('dsts_token');
  });

  it('retries a 503 and succeeds', async () => {
    const server = await startServer(json(503, {}), json(200, {}));
    servers.push(server);
    expect(await revokeToken(new URL(server.url), 't', { retry: noWait })).toEqual({ revoked: true });
    expect(server.received).toHaveLength(2);
  });

  it('reports, never throws, when the service refuses', async () => {
    const server = await startServer(json(401, { error: 'invalid_client' }));
    servers.push(server);
    const outcome = await revokeToken(new URL(server.url), 't', { retry: noWait });
    expect(outcome).toEqual({ revoked: false, reason: `the service answered HTTP 401 at ${server.url}/revoke` });
  });

  it('reports, never throws, when the service is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const outcome = await revokeToken(new URL(url), 't', { retry: noWait });
    expect(outcome.revoked).toBe(false);
    expect(!outcome.revoked && outcome.reason).toContain('unreachable');
  });
});
