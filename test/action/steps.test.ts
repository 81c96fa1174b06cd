/**
 * The main and post steps against a scripted service on loopback, with the runner's side (inputs, outputs,
 * state, masking, logs) recorded in order. The end-to-end tests run the same steps from dist/ against the real
 * service; these pin down ordering and what is (not) saved.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDeadline } from '../../action/deadline.js';
import { ActionError } from '../../action/errors.js';
import { runMainStep, type StepIO } from '../../action/main-step.js';
import { runPostStep } from '../../action/post-step.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { fakeClock } from './support/fake-clock.js';
import { json, startServer, type LoopbackServer, type Reply } from './support/loopback.js';

const TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJzaXRlIjoiZG9jcyJ9.ZHN0c19tYWluX3N0ZXBfdG9rZW4';

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

const ADVERTISED = 'https://127.0.0.1/deploy-sts';
const metadata = json(200, { issuer: 'x', subject_token_audience: ADVERTISED });
const issued = json(200, { access_token: TOKEN, token_type: 'Bearer', expires_in: 600, scope: 'deploy:write', site: 'docs', context: 'production', rule: 'production' });

/** Routes by path: metadata, then the scripted token answers. */
async function service(...tokenReplies: Reply[]): Promise<LoopbackServer> {
  return serviceWith(metadata, ...tokenReplies);
}

async function serviceWith(metadataReply: Reply, ...tokenReplies: Reply[]): Promise<LoopbackServer> {
  let tokenCalls = 0;
  const server = await startServer((req, res, i) => {
    if (req.path.endsWith('/.well-known/oauth-authorization-server')) return metadataReply(req, res, i);
    const reply = tokenReplies[Math.min(tokenCalls++, tokenReplies.length - 1)]!;
    return reply(req, res, i);
  });
  servers.push(server);
  return server;
}

interface Recorder extends StepIO {
  events: string[];
  outputs: Record<string, string>;
  state: Record<string, string>;
  env: Record<string, string>;
  audiences: string[];
  summary: string;
}

function recorder(inputs: Record<string, string>): Recorder {
  const r: Recorder = {
    events: [],
    outputs: {},
    state: {},
    env: {},
    audiences: [],
    summary: '',
    getInput: (name) => inputs[name] ?? '',
    setSecret: (s) => r.events.push(`mask ${s}`),
    setOutput: (n, v) => {
      r.outputs[n] = v;
      r.events.push(`output ${n}=${v}`);
    },
    saveState: (n, v) => {
      r.state[n] = v;
      r.events.push(`state ${n}=${v}`);
    },
    exportVariable: (n, v) => {
      r.env[n] = v;
      r.events.push(`env ${n}=${v}`);
    },
    getIDToken: async (aud) => {
      r.audiences.push(aud);
      return issuer.token({ aud });
    },
    writeSummary: async (html) => {
      r.summary += html;
    },
    info: (line) => r.events.push(`info ${line}`),
    warning: (line) => r.events.push(`warning ${line}`),
  };
  return r;
}

const oidcEnv = { ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:1/token?x=1', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token' };

describe('the main step', () => {
  it('masks the token before it appears anywhere else', async () => {
    const server = await service(issued);
    const io = recorder({ url: server.url, site: 'docs', 'export-env': 'DEPLOY_TOKEN' });
    await runMainStep(io, oidcEnv);
    const first = io.events.findIndex((e) => e.includes(TOKEN));
    expect(io.events[first]).toBe(`mask ${TOKEN}`);
  });

  it('sets every output, exports the token when asked and saves only the token and URL for the post step', async () => {
    const server = await service(issued);
    const io = recorder({ url: server.url, site: 'docs', 'export-env': 'DEPLOY_TOKEN' });
    await runMainStep(io, oidcEnv);
    expect(io.outputs).toEqual({
      token: TOKEN,
      'expires-at': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown as string,
      scope: 'deploy:write',
      context: 'production',
      site: 'docs',
      rule: 'production',
    });
    expect(io.env).toEqual({ DEPLOY_TOKEN: TOKEN });
    expect(io.state).toEqual({ token: TOKEN, url: server.url });
  });

  it('uses the audience the service advertises, else the input', async () => {
    const server = await service(issued);
    const advertised = recorder({ url: server.url, site: 'docs' });
    await runMainStep(advertised, oidcEnv);
    expect(advertised.audiences).toEqual([ADVERTISED]);

    const explicit = recorder({ url: server.url, site: 'docs', audience: 'custom-aud' });
    await runMainStep(explicit, oidcEnv);
    expect(explicit.audiences).toEqual(['custom-aud']);
  });

  it('warns, and uses the service URL, when the advertised audience names another host', async () => {
    const server = await serviceWith(json(200, { subject_token_audience: 'https://vault.example.com' }), issued);
    const io = recorder({ url: server.url, site: 'docs' });
    await runMainStep(io, oidcEnv);
    expect(io.audiences).toEqual([server.url]);
    const warning = io.events.find((e) => e.startsWith('warning '));
    expect(warning).toContain(`Ignoring the audience "https://vault.example.com" that the service's metadata advertises: its host vault.example.com is not the service's host 127.0.0.1.`);
    expect(warning).toContain('set the `audience` input');
  });

  it('shares one overall deadline between metadata discovery and the exchange', async () => {
    const unavailable = json(503, { error: 'temporarily_unavailable' });
    let metadataCalls = 0;
    const server = await serviceWith((req, res, i) => (metadataCalls++ === 0 ? unavailable : metadata)(req, res, i), unavailable, issued);
    const clock = fakeClock();
    const io = recorder({ url: server.url, site: 'docs' });
    const retry = { now: clock.now, sleep: clock.sleep, random: () => 0.5, baseDelayMs: 4_000 };
    // Metadata waits 3 s of the 5 s; after the exchange's 503 the next 3 s wait no longer fits.
    const error = await runMainStep(io, oidcEnv, { deadline: startDeadline(5_000, clock.now), retry }).catch((e: unknown) => e);
    expect(clock.sleeps).toEqual([3_000]);
    expect(error).toBeInstanceOf(ActionError);
    expect((error as ActionError).problem).toContain("answered HTTP 503 (after 1 attempt), and the step's overall time limit of 5s leaves no time for another");
    expect(io.outputs).toEqual({});
  });

  it('saves nothing for the post step with revoke: false', async () => {
    const server = await service(issued);
    const io = recorder({ url: server.url, site: 'docs', revoke: 'false' });
    await runMainStep(io, oidcEnv);
    expect(io.state).toEqual({});
  });

  it('writes the summary without the token', async () => {
    const server = await service(issued);
    const io = recorder({ url: server.url, site: 'docs' });
    await runMainStep(io, oidcEnv);
    expect(io.summary).toContain('production');
    expect(io.summary).not.toContain(TOKEN);
  });

  it('fails with the id-token permission message when the runner gives no OIDC token, before calling the service', async () => {
    const server = await service(issued);
    const io = recorder({ url: server.url, site: 'docs' });
    const error = await runMainStep(io, { GITHUB_EVENT_NAME: 'push' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionError);
    expect((error as ActionError).code).toBe('id_token_unavailable');
    expect(server.received).toHaveLength(0);
  });

  it('saves no state and sets no output when the exchange fails', async () => {
    const server = await service(json(400, { error: 'invalid_target', error_description: 'no rule matched' }));
    const io = recorder({ url: server.url, site: 'docs' });
    await expect(runMainStep(io, oidcEnv)).rejects.toBeInstanceOf(ActionError);
    expect(io.state).toEqual({});
    expect(io.outputs).toEqual({});
  });
});

describe('the post step', () => {
  function postIO(state: Record<string, string>) {
    const events: string[] = [];
    return {
      events,
      io: {
        getState: (n: string) => state[n] ?? '',
        setSecret: (s: string) => events.push(`mask ${s}`),
        info: (l: string) => events.push(`info ${l}`),
        warning: (l: string) => events.push(`warning ${l}`),
      },
    };
  }

  it('revokes the saved token at the saved service', async () => {
    const server = await startServer(json(200, {}));
    servers.push(server);
    const { io, events } = postIO({ token: TOKEN, url: server.url });
    await runPostStep(io);
    expect(server.received[0]!.form.get('token')).toBe(TOKEN);
    expect(events).toContain('info Revoked the deploy token.');
  });

  it('does nothing when there is no token', async () => {
    const { io, events } = postIO({});
    await runPostStep(io);
    expect(events).toEqual(['info No deploy token to revoke (none was issued, or revoke: false).']);
  });

  it('warns, and does not throw, when revocation fails', async () => {
    const server = await startServer(json(500, {}));
    servers.push(server);
    const { io, events } = postIO({ token: TOKEN, url: server.url });
    await runPostStep(io);
    expect(events.some((e) => e.startsWith('warning Could not revoke the deploy token'))).toBe(true);
  }, 30_000);
});
