/**
 * Attack round 15b on the deploy gateway (outside review before release), aimed first at what had just changed: the
 * upstream relay on plain pipe() with its own error, early-close and deadline handling; audit rows of forwarded
 * calls committed in batches; one storage read per call for revocation and credential; the per-token cap on preview
 * deploys. Each test asserts the safe behaviour and checks what reached the Netlify stand-in. A test marked
 * `it.fails` is a hole still open (see its comment).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialStore } from '../../exchange-service/credentials/store.js';
import { readKeyEncryptionKey } from '../../exchange-service/keys/key-encryption.js';
import { gatewayOutcome } from '../../exchange-service/gateway/audit-view.js';
import type { StoredGatewayAudit } from '../../exchange-service/storage/gateway-types.js';
import { SKIP_POSTGRES } from '../../testing/postgres.js';
import { type TestIssuer } from '../helpers/issuer.js';
import { type NetlifyStandin, type StandinSite } from '../helpers/netlify/standin.js';
import { exchangeToken, postForm, type TestService } from '../helpers/service.js';
import { createDraft, startGatewayReplicas, startGatewayWorld, rawRequest, reached, type Answer, type GatewayReplicas, type GatewayWorld } from '../gateway/support.js';

const API = '/gateway/netlify/api/v1';
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every answer of the run, checked at the end for the stored credentials. */
const seen: string[] = [];
const credentials: string[] = [];
const request = (url: string, method: string, path: string, headers: Record<string, string | number>, body?: Buffer) => rawRequest(url, method, path, headers, body, seen);

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An upload whose body the test sends by hand: headers and `first` now, the rest (or an abort) later. */
function openRequest(url: string, method: string, path: string, headers: Record<string, string | number>, first?: Buffer) {
  const { hostname, port } = new URL(url);
  const req = http.request({ host: hostname, port, method, path, headers, agent: false });
  const answer = new Promise<{ status: number; text: string }>((resolve) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        seen.push(`${res.statusCode} ${JSON.stringify(res.headers)} ${text}`);
        resolve({ status: res.statusCode ?? 0, text });
      });
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text: '' }));
    });
    req.on('error', () => resolve({ status: 0, text: '' }));
  });
  if (first) req.write(first);
  else req.flushHeaders();
  return { req, answer };
}

/**
 * Watch the next stand-in request whose path matches: `closed` resolves when its connection (the gateway's upstream
 * socket) closes. `answer`: answer it at once, without reading its body (Netlify's early error), or `'stall'`.
 */
function watchUpstream(world: GatewayWorld, pattern: RegExp, answer?: { status: number; body: unknown } | 'stall') {
  let resolveSeen: () => void;
  let resolveClosed: () => void;
  const arrived = new Promise<void>((r) => (resolveSeen = r));
  const closed = new Promise<void>((r) => (resolveClosed = r));
  world.standin.intercept((req, res) => {
    if (!pattern.test(`${req.method} ${req.url}`)) return false;
    req.socket.once('close', () => resolveClosed());
    resolveSeen();
    if (answer === undefined) return false;
    if (answer === 'stall') {
      req.resume(); // reads the whole body, never answers
      return true;
    }
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    return true;
  });
  return { arrived, closed };
}

async function auditRows(world: GatewayWorld, match: (row: StoredGatewayAudit) => boolean, wantAtLeast = 1): Promise<StoredGatewayAudit[]> {
  // A forwarded call's row is written once its answer has gone: bounded wait.
  for (let i = 0; i < 50; i++) {
    const rows = (await world.svc.service.storage.gateway.listGatewayAudit({ limit: 1000 })).filter(match);
    if (rows.length >= wantAtLeast) return rows;
    await sleep(50);
  }
  return (await world.svc.service.storage.gateway.listGatewayAudit({ limit: 1000 })).filter(match);
}

function auth(token: string, type = 'application/json'): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'content-type': type };
}

/**
 * A gateway world for the enclosing describe block, handed to `set` once started (its stand-in's token joins
 * `credentials`, searched for at the end), stopped after the block with any interception cleared.
 */
function useWorld(set: (world: GatewayWorld) => void, options?: Parameters<typeof startGatewayWorld>[0]): void {
  let world: GatewayWorld | undefined;
  beforeAll(async () => {
    world = await startGatewayWorld(options);
    credentials.push(world.standin.token);
    set(world);
  });
  afterAll(async () => {
    world?.standin.intercept(undefined);
    await world?.stop();
  });
}

describe('the upload relay (plain pipe)', () => {
  let world: GatewayWorld;
  useWorld((started) => (world = started));

  it('lets no upstream request hang half-sent when Netlify answers before the upload ends and the client then goes away', async () => {
    // Found in this round: after an early answer the relay dropped its interest in the upload, so a client that
    // stopped there (or was cut off by the `Connection: close` answer) left the upstream request open with a partial
    // body, holding one of the gateway's 64 upstream sockets until Netlify timed it out.
    const token = await world.token('preview');
    const big = randomBytes(1024 * 1024);
    const id = await createDraft(world, token, { 'big.bin': sha1(big) });
    const upstream = watchUpstream(world, new RegExp(`^PUT /api/v1/deploys/${id}/files/big.bin$`), { status: 422, body: { code: 422, message: 'early refusal' } });
    const upload = openRequest(world.svc.url, 'PUT', `${API}/deploys/${id}/files/big.bin`, {
      ...auth(token, 'application/octet-stream'), 'content-length': big.length,
    }, big.subarray(0, 64 * 1024));
    const answer = await upload.answer;
    expect(answer.status, answer.text).toBe(422);
    upload.req.destroy();
    expect(await within(upstream.closed, 3000), 'the upstream request was still open 3 s after the client left').toBe(true);
    world.standin.intercept(undefined);
    expect(world.standin.deploys.get(id)!.uploads).toEqual([]);
    const rows = await auditRows(world, (r) => r.deployId === id && r.route === 'deploy.upload-file');
    expect(rows[0]).toMatchObject({ result: 'forwarded', upstreamStatus: 422, status: 422 });
  });

  it('stops the upstream request when the client aborts mid-upload: Netlify never gets a complete file, and the call is audited', async () => {
    const token = await world.token('preview');
    const big = randomBytes(512 * 1024);
    const id = await createDraft(world, token, { 'half.bin': sha1(big) });
    const upstream = watchUpstream(world, new RegExp(`^PUT /api/v1/deploys/${id}/files/half.bin$`));
    const upload = openRequest(world.svc.url, 'PUT', `${API}/deploys/${id}/files/half.bin`, {
      ...auth(token, 'application/octet-stream'), 'content-length': big.length,
    }, big.subarray(0, 100 * 1024));
    await upstream.arrived;
    await sleep(100);
    upload.req.destroy();
    expect(await within(upstream.closed, 3000), 'the upstream request was still open 3 s after the client aborted').toBe(true);
    world.standin.intercept(undefined);
    expect(world.standin.deploys.get(id)!.uploads).toEqual([]);
    const rows = await auditRows(world, (r) => r.deployId === id && r.route === 'deploy.upload-file');
    expect(rows[0]).toMatchObject({ reason: 'client_aborted', upstreamStatus: null });
    expect(rows[0]!.bytesIn).toBeGreaterThan(0);
  });

  it('cuts a chunked upload that ends without its last chunk: the partial body never completes upstream', async () => {
    const token = await world.token('preview');
    const body = randomBytes(200 * 1024);
    const id = await createDraft(world, token, { 'chunked.bin': sha1(body) });
    const upstream = watchUpstream(world, new RegExp(`^PUT /api/v1/deploys/${id}/files/chunked.bin$`));
    const { hostname, port } = new URL(world.svc.url);
    const socket = net.connect(Number(port), hostname);
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `PUT ${API}/deploys/${id}/files/chunked.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    socket.write(`${body.length.toString(16)}\r\n`);
    socket.write(body);
    socket.write('\r\n'); // every byte of the file, but never the terminating 0-chunk
    await upstream.arrived;
    await sleep(200);
    socket.destroy();
    expect(await within(upstream.closed, 3000)).toBe(true);
    world.standin.intercept(undefined);
    expect(world.standin.deploys.get(id)!.uploads).toEqual([]);
  });

  it('lets no request be smuggled: Transfer-Encoding with Content-Length is refused, a body on a bodiless route is never sent upstream', async () => {
    const token = await world.token('preview');
    const id = await createDraft(world, token, { 's.html': sha1(Buffer.from('s')) });
    const before = world.standin.requests.length;
    const { hostname, port } = new URL(world.svc.url);
    const exchange = async (text: string): Promise<string> => {
      const socket: Socket = net.connect(Number(port), hostname);
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise((r) => socket.once('close', r));
      socket.on('error', () => undefined);
      socket.write(text);
      await within(ended, 1500);
      socket.destroy();
      const answer = Buffer.concat(chunks).toString('utf8');
      seen.push(answer);
      return answer;
    };
    const smuggled = `DELETE /api/v1/sites/${world.docs.id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    // TE + CL: the parser refuses the request (400), nothing is forwarded.
    const teCl = await exchange(
      `PUT ${API}/deploys/${id}/files/s.html HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    );
    expect(teCl).toMatch(/^HTTP\/1\.1 400/);
    // Two Content-Lengths that disagree, and an obs-folded Transfer-Encoding: refused alike.
    expect(await exchange(`PUT ${API}/deploys/${id}/files/s.html HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nss`)).toMatch(/^HTTP\/1\.1 400/);
    expect(await exchange(`PUT ${API}/deploys/${id}/files/s.html HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n1\r\ns\r\n0\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400/);
    // A cancel (no body upstream) carrying a request in its body, then a pipelined DELETE on the same connection.
    const piggyback = await exchange(
      `POST ${API}/deploys/${id}/cancel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${Buffer.byteLength(smuggled)}\r\n\r\n${smuggled}` +
        `DELETE ${API}/sites/${world.docs.id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(piggyback).toMatch(/^HTTP\/1\.1 20[01]/);
    expect(piggyback).toMatch(/HTTP\/1\.1 403[\s\S]*never deletes a site/);
    const upstream = world.standin.requests.slice(before);
    expect(upstream.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /api/v1/deploys/${id}/cancel`]);
    expect(upstream[0]!.bodyBytes).toBe(0);
    expect(world.docs.deleted).toBe(false);
  });

  it('refuses every JSON trick of a preview token before Netlify: escapes, nesting, huge numbers, BOM, odd content types', async () => {
    const token = await world.token('preview');
    const own = await createDraft(world, token, { 'j.html': sha1(Buffer.from('j')) });
    const before = world.standin.requests.length;
    const sha = 'a'.repeat(40);
    const creates = [
      '{"dr\\u0061ft":false}', '{"draft":true,"br\\u0061nch":"main"}', '{"draft":true,"deploy":{"draft":false}}', '{"draft":1e999}',
      '{"draft":true,"draft":false}', '\ufeff{"draft":false}', '{"draft":true,"branch":"MAIN"}', '{"draft":true,"branch":["main"]}',
      '{"draft":true,"include_upload_url":1}', '{"draft":true,"\\u0062ranch":"x"}', '{"draft":false,"draft":true,"branch":"x"}',
    ];
    const updates = [
      `{"files":{"\\u002enetlify/internal/edge-functions/x.js":"${sha}"}}`, `{"fil\\u0065s":{"a":"${sha}"},"br\\u0061nch":"main"}`,
      `{"files":{"a.html":"${sha}"},"functions":{"f":"${'b'.repeat(64)}"}}`, `{"files":{"a.html":"${sha}","a.html":"${sha.toUpperCase()}"}}`,
      `{"files":{"//.netlify/deploy-config/x":"${sha}"}}`, '{"files":{"a":"x"},"environment":[{"key":"K","value":"v"}]}',
      `{"files":{"a.html":"${sha}"},"function_schedules":[{"name":"f","cron":"* * * * *"}]}`, `{"files":{}, "server":{"s":"${'c'.repeat(64)}"}}`,
      `{"files":{"a\\u0000b":"${sha}"}}`, `{"files":{"..\\/x":"${sha}"}}`,
    ];
    for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded', '']) {
      for (const body of creates) {
        const res = await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, { ...auth(token, type), 'content-length': Buffer.byteLength(body) }, Buffer.from(body));
        expect(res.status, `${type} ${body}: ${res.text}`).toBeGreaterThanOrEqual(400);
      }
      for (const body of updates) {
        const res = await request(world.svc.url, 'PUT', `${API}/sites/${world.docs.id}/deploys/${own}`, { ...auth(token, type), 'content-length': Buffer.byteLength(body) }, Buffer.from(body));
        expect(res.status, `${type} ${body}: ${res.text}`).toBeGreaterThanOrEqual(400);
      }
    }
    expect(world.standin.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it('writes every refusal to the audit log before its answer leaves', async () => {
    const token = await world.token('preview');
    const probes: [string, string][] = [
      ['DELETE', `${API}/sites/${world.docs.id}`],
      ['GET', `${API}/sites/${world.other.id}`],
      ['GET', `${API}/sites/${world.docs.id}/env`],
      ['POST', `${API}/deploys/0123456789abcdef01234567/cancel`],
      ['GET', `${API}/sites/${world.docs.id}?access_token=x`],
    ];
    for (const [method, path] of probes) {
      const res = await request(world.svc.url, method, path, { authorization: `Bearer ${token}` });
      expect(res.status).toBeGreaterThanOrEqual(400);
      // No wait: the row must be there the moment the answer is.
      const rows = await world.svc.service.storage.gateway.listGatewayAudit({ site: 'docs', limit: 20 });
      const row = rows.find((r) => r.detail === res.json().message);
      expect(row, `${method} ${path}`).toMatchObject({ method, result: 'refused', status: res.status });
    }
  });

  it('drops a verified token from its cache when it expires: refused at the first request after exp, before Netlify', async () => {
    const token = await world.mintedAgo(0, 2);
    const first = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
    expect(first.status, first.text).toBe(200);
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
    const before = world.standin.requests.length;
    const late = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
    expect(late.status, late.text).toBe(401);
    expect(late.json().message).toContain('expired');
    expect(world.standin.requests.length).toBe(before);
  });
});

describe('the time limit (DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS=1)', () => {
  let world: GatewayWorld;
  useWorld((started) => (world = started), { env: { DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS: '1' } });

  it('stops a slowloris upload at the deadline: 504, the upstream request is closed, Netlify gets no file', async () => {
    const token = await world.token('preview');
    const body = randomBytes(64 * 1024);
    const id = await createDraft(world, token, { 'slow.bin': sha1(body) });
    const upstream = watchUpstream(world, new RegExp(`^PUT /api/v1/deploys/${id}/files/slow.bin$`));
    const started = Date.now();
    const upload = openRequest(world.svc.url, 'PUT', `${API}/deploys/${id}/files/slow.bin`, { ...auth(token, 'application/octet-stream'), 'content-length': body.length }, body.subarray(0, 10));
    const drip = setInterval(() => upload.req.write(Buffer.from([0])), 200);
    try {
      expect(await within(upload.answer, 5000), 'no answer 5 s into a 1 s time limit').toBe(true);
      const answer = await upload.answer;
      expect(answer.status, answer.text).toBe(504);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(await within(upstream.closed, 3000)).toBe(true);
    } finally {
      clearInterval(drip);
      upload.req.destroy();
      world.standin.intercept(undefined);
    }
    expect(world.standin.deploys.get(id)!.uploads).toEqual([]);
  });

  it('stops a JSON body still arriving at the deadline: 504 in Netlify\'s shape, nothing reaches Netlify', async () => {
    // Found in this round: the deadline only stopped the upstream request, so a JSON body trickled in kept the call
    // (and up to DEPLOY_STS_GATEWAY_MAX_JSON_BYTES of memory) open until the server's own request timeout (>= 30 s).
    const token = await world.token('preview');
    const before = world.standin.requests.length;
    const started = Date.now();
    const body = Buffer.from(`{"draft":true,"deploy_source":"${'x'.repeat(500)}"}`);
    const create = openRequest(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, { ...auth(token), 'content-length': body.length }, body.subarray(0, 5));
    let sent = 5;
    const drip = setInterval(() => {
      if (sent < body.length - 1) create.req.write(body.subarray(sent, ++sent));
    }, 200);
    try {
      expect(await within(create.answer, 5000), 'no answer 5 s into a 1 s time limit').toBe(true);
      const answer = await create.answer;
      expect(answer.status, answer.text).toBe(504);
      expect(JSON.parse(answer.text)).toMatchObject({ code: 504, message: expect.stringContaining('DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS') });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      clearInterval(drip);
      create.req.destroy();
    }
    expect(world.standin.requests.slice(before)).toEqual([]);
  });

  it("answers 504 (not a bad answer) when Netlify's JSON answer is still arriving at the deadline", async () => {
    // Found in this round: a site or deploy answer cut by the deadline was reported as "more than
    // DEPLOY_STS_GATEWAY_MAX_JSON_BYTES bytes" (502 upstream_bad_answer), in the answer and the audit.
    const token = await world.token('preview');
    world.standin.intercept((req, res) => {
      if (req.method !== 'GET' || req.url !== `/api/v1/sites/${world.docs.id}`) return false;
      res.writeHead(200, { 'content-type': 'application/json' }).write('{"id":"');
      return true; // never ends
    });
    const res = await request(world.svc.url, 'GET', `${API}/sites/${world.docs.id}`, { authorization: `Bearer ${token}` });
    world.standin.intercept(undefined);
    expect(res.status, res.text).toBe(504);
    expect(res.json().message).toContain('DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS');
    const rows = await auditRows(world, (r) => r.route === 'site.get' && r.status === 504);
    expect(rows[0]).toMatchObject({ result: 'forwarded', reason: 'timeout' });
  });

  it('writes the audit row of an upload whose client stops reading its answer, at the deadline', async () => {
    // Held here, but narrowly: the deadline stopped only the upstream side, so an answer all received from Netlify
    // yet stuck in the gateway's buffers for a client that stopped reading would have kept the call (and its audit
    // row) waiting as long as the client held on. The deadline now cuts the client's answer too; this test cannot
    // force that window (kernel buffer sizes), it checks the row is written at the deadline.
    const token = await world.token('preview');
    const body = randomBytes(1024);
    const id = await createDraft(world, token, { 'unread.bin': sha1(body) });
    world.standin.intercept((req, res) => {
      if (req.method !== 'PUT' || req.url !== `/api/v1/deploys/${id}/files/unread.bin`) return false;
      req.resume();
      req.once('end', () => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(16 * 1024 * 1024)));
      return true;
    });
    const upload = openRequest(world.svc.url, 'PUT', `${API}/deploys/${id}/files/unread.bin`, { ...auth(token, 'application/octet-stream'), 'content-length': body.length }, body);
    upload.req.end();
    upload.req.on('response', (res) => res.pause()); // never reads
    try {
      const rows = await auditRows(world, (r) => r.deployId === id && r.route === 'deploy.upload-file');
      expect(rows[0], 'no audit row 2.5 s into a 1 s time limit').toMatchObject({ result: 'forwarded', upstreamStatus: 200, reason: 'timeout' });
    } finally {
      upload.req.destroy();
      world.standin.intercept(undefined);
    }
  });

  it('audits an upload Netlify received whole but answered too late as forwarded, not refused', async () => {
    // Found in this round: a call whose request reached Netlify but whose answer missed the deadline was audited as
    // `refused` (neither forwarded nor answered): the audit log hid a file (or a deploy) Netlify may have taken.
    const token = await world.token('preview');
    const body = randomBytes(8 * 1024);
    const id = await createDraft(world, token, { 'late.bin': sha1(body) });
    watchUpstream(world, new RegExp(`^PUT /api/v1/deploys/${id}/files/late.bin$`), 'stall');
    const res = await request(world.svc.url, 'PUT', `${API}/deploys/${id}/files/late.bin`, { ...auth(token, 'application/octet-stream'), 'content-length': body.length }, body);
    world.standin.intercept(undefined);
    expect(res.status).toBe(504);
    expect(world.standin.requests.filter((r) => r.path === `/api/v1/deploys/${id}/files/late.bin`)).toHaveLength(1);
    const rows = await auditRows(world, (r) => r.deployId === id && r.route === 'deploy.upload-file');
    expect(rows[0]).toMatchObject({ result: 'forwarded', reason: 'timeout', status: 504, upstreamStatus: null, bytesIn: body.length });
    expect(gatewayOutcome(rows[0]!)).toMatch(/^→ netlify -, then 504 timeout /);
  });
});

describe('the preview deploy cap (DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN=2)', () => {
  let world: GatewayWorld;
  useWorld((started) => (world = started), { env: { DEPLOY_STS_GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: '2' } });
  const creations = () => reached(world, new RegExp(`^POST /api/v1/sites/${world.docs.id}/deploys$`)).length;

  it('holds against parallel creations in every accepted form: bodies, title query, content types, Authorization spellings', async () => {
    const token = await world.token('preview');
    const before = creations();
    const variants: [string, Record<string, string>, string][] = [
      [`${API}/sites/${world.docs.id}/deploys`, auth(token), '{"draft":true}'],
      [`${API}/sites/${world.docs.id}/deploys`, auth(token), '{}'],
      [`${API}/sites/${world.docs.id}/deploys`, auth(token), ''],
      [`${API}/sites/${world.docs.id}/deploys?title=retry`, auth(token), '{"draft":true,"deploy_source":"cli"}'],
      [`${API}/sites/${world.docs.id}/deploys`, auth(token, 'text/plain'), '{"draft":true,"branch":null}'],
      [`${API}/sites/${world.docs.id}/deploys`, { authorization: `bearer ${token}`, 'content-type': 'application/json' }, '{"draft":true}'],
      [`${API}/sites/${world.docs.id}/deploys`, { authorization: `BEARER ${token} `, 'content-type': 'application/json' }, '{"draft":true}'],
      [`${API}/sites/${world.docs.id}/deploys`, auth(token), '{"include_upload_url":false,"draft":true}'],
    ];
    const answers: Answer[] = await Promise.all(
      [...variants, ...variants].map(([path, headers, body]) => request(world.svc.url, 'POST', path, headers, Buffer.from(body))),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(2);
    // The others are refused by the deploy cap, or (JSON bodies one token may have in flight) told to wait.
    const refusedWell = (a: Answer) => (a.status === 403 && /has created 2 deploys/.test(a.json().message as string)) || (a.status === 429 && /JSON bodies in flight/.test(a.json().message as string));
    expect(answers.filter((a) => a.status !== 200).every(refusedWell)).toBe(true);
    expect(creations() - before).toBe(2);
  });

  it('counts a creation Netlify failed: retrying after a 500 gets no extra slot', async () => {
    const token = await world.token('preview');
    const before = creations();
    let failed = false;
    world.standin.intercept((req, res) => {
      if (failed || req.method !== 'POST' || req.url !== `/api/v1/sites/${world.docs.id}/deploys`) return false;
      failed = true;
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"code":500,"message":"try again"}');
      return true;
    });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth(token), json({ draft: true }))).status);
    world.standin.intercept(undefined);
    expect(statuses).toEqual([500, 200, 403, 403]);
    expect(creations() - before).toBe(2);
  });

  it('offers no other route that creates a deploy: restore, builds, publish, legacy and nested paths are refused for a preview token', async () => {
    const token = await world.token('preview');
    const own = (await request(world.svc.url, 'POST', `${API}/sites/${world.docs.id}/deploys`, auth(token), json({}))).json().id as string;
    const before = world.standin.requests.length;
    const site = world.docs.id;
    const probes: [string, string][] = [
      ['POST', `${API}/sites/${site}/deploys/${own}/restore`],
      ['POST', `${API}/sites/${site}/builds`],
      ['POST', `${API}/sites/${site}/deploys/`],
      ['POST', `${API}/sites/${site}//deploys`],
      ['POST', `${API}/sites/${site}/deploys/${own}`],
      ['PUT', `${API}/sites/${site}/deploys`],
      ['POST', `${API}/deploys`],
      ['POST', `${API}/deploys/${own}`],
      ['POST', `${API}/deploys/${own}/restore`],
      ['POST', `${API}/api/v1/sites/${site}/deploys`],
      ['POST', `${API}/sites/${site}/deploys;x`],
      ['POST', `${API}/sites/${site}/deploy%73`],
      ['POST', `${API}/sites/${site}/rollback`],
      ['PUT', `${API}/sites/${site}/rollback`],
      ['POST', `${API}/sites/${site}/deploys/${own}/cancel`],
      ['POST', `${API}/sites/${site}/build_hooks`],
      ['POST', `${API}/sites`],
      ['POST', `/gateway/netlify/api/v1/../v1/sites/${site}/deploys`],
    ];
    for (const [method, path] of probes) {
      const res = await request(world.svc.url, method, path, auth(token), json({ draft: true }));
      if (path.endsWith('deploy%73')) {
        // %73 is `s`: the same endpoint, counted as such.
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(200);
        continue;
      }
      expect(res.status, `${method} ${path}: ${res.text}`).toBeGreaterThanOrEqual(400);
    }
    expect(world.standin.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([`POST /api/v1/sites/${site}/deploys`]);
    const third = await request(world.svc.url, 'POST', `${API}/sites/${site}/deploy%73`, auth(token), json({}));
    expect(third.status).toBe(403);
  });
});

describe('upstream sockets shared by every site', () => {
  let world: GatewayWorld;
  useWorld((started) => (world = started));

  // Was open: every platform request shared one keep-alive agent (maxSockets 64), and a streamed upload holds its
  // upstream socket as long as its client keeps sending (up to DEPLOY_STS_GATEWAY_TIMEOUT_SECONDS). Now each bound site
  // has its own pool of 64, and one token holds at most DEPLOY_STS_GATEWAY_CALLS_PER_TOKEN (16) calls in flight.
  it("keeps another site deploying while its own site's 64 upstream sockets are held by slow uploads", { timeout: 30_000 }, async () => {
    const body = randomBytes(1024);
    const uploads: ReturnType<typeof openRequest>[] = [];
    try {
      for (let t = 0; t < 4; t++) {
        const token = await world.token('preview');
        const id = await createDraft(world, token, { 'hold.bin': sha1(body) });
        for (let i = 0; i < 16; i++) {
          uploads.push(openRequest(world.svc.url, 'PUT', `${API}/deploys/${id}/files/hold.bin`, { ...auth(token, 'application/octet-stream'), 'content-length': body.length }, body.subarray(0, 1)));
        }
      }
      for (let i = 0; i < 100 && reached(world, /^PUT \/api\/v1\/deploys\/[^/]+\/files\/hold.bin$/).length < 64; i++) await sleep(50);
      expect(reached(world, /^PUT \/api\/v1\/deploys\/[^/]+\/files\/hold.bin$/).length).toBe(64);
      const blog = await world.token('production', 'blog');
      const victim = rawRequest(world.svc.url, 'GET', `${API}/sites/${world.blog.id}`, { authorization: `Bearer ${blog}` });
      expect(await within(victim, 3000), "another site's request waited behind one site's slow uploads").toBe(true);
      expect((await victim).status).toBe(200);
    } finally {
      for (const upload of uploads) upload.req.destroy();
    }
  });

  it('gives one token at most 16 calls in flight: the next is 429 in Netlify\'s shape, reaches nothing, and is served once one ends', { timeout: 30_000 }, async () => {
    const token = await world.token('preview');
    const body = randomBytes(1024);
    const id = await createDraft(world, token, { 'cap.bin': sha1(body) });
    const path = `${API}/deploys/${id}/files/cap.bin`;
    const upstream = new RegExp(`^PUT /api/v1/deploys/${id}/files/cap.bin$`);
    const headers = { ...auth(token, 'application/octet-stream'), 'content-length': body.length };
    const uploads = Array.from({ length: 16 }, () => openRequest(world.svc.url, 'PUT', path, headers, body.subarray(0, 1)));
    try {
      for (let i = 0; i < 100 && reached(world, upstream).length < 16; i++) await sleep(50);
      expect(reached(world, upstream)).toHaveLength(16);
      const extra = openRequest(world.svc.url, 'PUT', path, headers);
      extra.req.end(body);
      const refused = await extra.answer;
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.text)).toEqual({ code: 429, message: expect.stringMatching(/already has 16 calls in flight.*DEPLOY_STS_GATEWAY_CALLS_PER_TOKEN/) });
      expect(reached(world, upstream)).toHaveLength(16);

      uploads[0]!.req.destroy();
      await sleep(200);
      const after = openRequest(world.svc.url, 'PUT', path, headers);
      after.req.end(body);
      expect((await after.answer).status).toBe(200);
    } finally {
      for (const upload of uploads) upload.req.destroy();
    }
  });
});

describe('an anonymous flood of the gateway', () => {
  let world: GatewayWorld;
  useWorld((started) => (world = started));

  // Was open: every call refused without a valid token was a durable row, so anyone on the network could grow the
  // append-only audit log with every request. Now 10 such refusals a minute per address are audited, the rest counted
  // into the address's next row (as /token's rate-limited requests); every call with a valid token is audited.
  it('does not grow the audit log by one durable row per request without a token', async () => {
    const count = async () => (await world.svc.service.storage.gateway.listGatewayAudit({ limit: 100_000 })).filter((r) => r.tokenJti === null).length;
    const before = await count();
    for (let i = 0; i < 200; i++) {
      const res = await rawRequest(world.svc.url, 'GET', `${API}/sites/${world.docs.id}?i=${i}`, { authorization: 'Bearer not-a-token' });
      expect(res.status).toBe(401);
    }
    expect((await count()) - before).toBe(10);
  });
});

describe.skipIf(SKIP_POSTGRES)('replicas sharing PostgreSQL: revocation and credential removal on the very next request', () => {
  let replicated: GatewayReplicas;
  let issuer: TestIssuer;
  let standin: NetlifyStandin;
  let site: StandinSite;
  let kek: string;
  let replicas: TestService[];
  const address = (i: number) => replicated.address(i);

  beforeAll(async () => {
    replicated = await startGatewayReplicas();
    credentials.push(replicated.standin.token);
    ({ issuer, standin, site, kek, replicas } = replicated);
  }, 120_000);

  afterAll(async () => {
    await replicated?.stop();
  });

  const tokenFor = async (claims: Record<string, unknown> = {}) => {
    const exchanged = await exchangeToken(address(0), await issuer.token(claims));
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    return String(exchanged.body.access_token);
  };
  const getSite = (i: number, token: string) => request(address(i), 'GET', `${API}/sites/${site.id}`, { authorization: `Bearer ${token}` });

  it('refuses on replica 1 a token revoked through replica 0, though replica 1 has its verification cached', async () => {
    const token = await tokenFor({ event_name: 'pull_request_target', environment: undefined });
    expect((await getSite(1, token)).status).toBe(200);
    expect((await postForm(`${address(0)}/revoke`, { token })).status).toBe(200);
    const before = standin.requests.length;
    const res = await getSite(1, token);
    expect(res.status, res.text).toBe(401);
    expect(res.json().message).toContain('revoked');
    expect(standin.requests.length).toBe(before);
  });

  it('stops using a credential removed through replica 0 at replica 1\'s next request, and uses its replacement at once', async () => {
    const token = await tokenFor();
    expect((await getSite(1, token)).status).toBe(200);
    const store0 = credentialStore(replicas[0]!.service.storage.gateway, await readKeyEncryptionKey(kek));
    expect(await store0.remove('netlify-acme')).toBe(true);
    const before = standin.requests.length;
    const res = await getSite(1, token);
    expect(res.status, res.text).toBe(503);
    expect(res.json().message).toContain('deploy-sts credentials set netlify-acme');
    expect(standin.requests.length).toBe(before);
    // Replaced by another secret: replica 1's next request carries the new one, never the old.
    await store0.set('netlify-acme', 'nfp_replaced_but_wrong');
    credentials.push('nfp_replaced_but_wrong');
    const wrong = await getSite(1, token);
    expect(wrong.status).toBe(401); // the stand-in refuses the wrong token
    expect(standin.requests.at(-1)!.headers.authorization).toBe('Bearer nfp_replaced_but_wrong');
    await store0.set('netlify-acme', standin.token);
    expect((await getSite(1, token)).status).toBe(200);
  });
});

describe('the stored credentials', () => {
  it('never appeared in any answer of this round', () => {
    expect(seen.length).toBeGreaterThan(50);
    for (const secret of credentials) for (const text of seen) expect(text).not.toContain(secret);
  });
});
