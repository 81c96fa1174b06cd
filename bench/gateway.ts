/**
 * The Netlify deploy gateway (section 8 of `npm run bench`; alone: `npm run build && node build/bench/gateway.js`).
 *
 * 1. Throughput: the same deploy — 1,000 files, 100 MB in all — straight to the Netlify stand-in and through the
 *    gateway of a real service process, alternating, in one run. A deploy is what `netlify deploy` does: create,
 *    send the digests, upload every file (UPLOAD_CONCURRENCY at a time, keep-alive), poll it ready.
 *    The same again with 10 ms each way between the deploying side and the stand-in (a TCP relay), as Netlify is
 *    reached over a network, not loopback. On loopback, also through the plainest Node HTTP relay
 *    (bench/plain-relay.ts): the floor for any Node gateway on this machine. One unmeasured deploy each way first,
 *    so that no round pays for JIT compilation.
 * 2. Memory: the service's RSS (from /proc) sampled while one 200 MB file streams through the gateway.
 * Every file's content is unique per deploy, so the stand-in never skips an upload it has already seen.
 * BENCH_GATEWAY_SMOKE=1 (with BENCH_GATEWAY_SMOKE_FILES=N) runs a small version to check the section works;
 * BENCH_PROFILE=<dir> writes a V8 CPU profile of the service.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startNetlifyStandin, type NetlifyStandin } from '../testing/netlify-standin.js';
import { BENCH_AUDIENCE, githubShapedClaims, newIssuerKey, privateKeyOf, signRs256, startIssuer, type RunningIssuer } from './issuer.js';
import { ROOT, startPlainRelay, startService, type Server } from './processes.js';
import { median, round } from './stats.js';

/** BENCH_GATEWAY_SMOKE=1: a small run that only checks the section works (20 files, an 8 MB file). */
const SMOKE = process.env.BENCH_GATEWAY_SMOKE === '1';
const FILES = SMOKE ? Number(process.env.BENCH_GATEWAY_SMOKE_FILES ?? 20) : 1000;
const FILE_BYTES = 100 * 1024;
const BIG_FILE_BYTES = (SMOKE ? 8 : 200) * 1024 * 1024;
const UPLOAD_CONCURRENCY = 8;
const ROUNDS = 3;
const CHUNK = 1024 * 1024;
/** One-way latency to "Netlify" in the second comparison (GitHub runner to api.netlify.com is a few ms to tens of ms). */
const WAN_ONE_WAY_MS = 10;

export interface GatewayBenchResult {
  files: number;
  totalMB: number;
  rounds: number;
  /** MB/s of each deploy, in run order. */
  directMBps: number[];
  gatewayMBps: number[];
  medianDirectMBps: number;
  medianGatewayMBps: number;
  /** Median gateway throughput over median direct throughput. */
  ratio: number;
  /** CPU seconds the service spent on each gateway deploy (steadier than throughput on a busy machine). */
  serviceCpuSecondsPerDeploy: number[];
  /** The same deploys through the plain Node relay (loopback): MB/s, CPU seconds of the relay per deploy. */
  relayMBps: number[];
  relayCpuSecondsPerDeploy: number[];
  relayRatio: number;
  /** The same comparison with WAN-like latency between the deploying side and the stand-in. */
  wan: { oneWayMs: number; directMBps: number[]; gatewayMBps: number[]; ratio: number };
  bigFileMB: number;
  bigFileSeconds: number;
  rssBeforeMB: number;
  rssPeakMB: number;
  rssGrowthMB: number;
  targets: { target: string; value: string; met: boolean }[];
}

interface Target {
  base: string;
  authorization: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: UPLOAD_CONCURRENCY + 2 });

function call(target: Target, method: string, path: string, body?: Buffer | Readable, contentType = 'application/json', length?: number): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.base + path);
    const headers: Record<string, string | number> = { authorization: target.authorization, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.isBuffer(body) ? body.length : length!;
    }
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = text;
        }
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** File `i` of deploy `run`: a shared random body with a unique first line. */
function fileContent(base: Buffer, run: string, i: number): Buffer {
  const content = Buffer.from(base);
  content.write(`${run}/${i}\n`.padEnd(48, ' '), 0, 'latin1');
  return content;
}

async function deploy(target: Target, siteId: string, base: Buffer, run: string): Promise<number> {
  const names = Array.from({ length: FILES }, (_, i) => `assets/f${String(i).padStart(4, '0')}.bin`);
  const files: Record<string, string> = {};
  for (const [i, name] of names.entries()) files[`/${name}`] = createHash('sha1').update(fileContent(base, run, i)).digest('hex');
  const started = performance.now();
  const created = await call(target, 'POST', `/sites/${siteId}/deploys`, Buffer.from(JSON.stringify({ draft: false })));
  const id = (created.json as { id: string }).id;
  const update = await call(target, 'PUT', `/sites/${siteId}/deploys/${id}`, Buffer.from(JSON.stringify({ files, draft: false, async: false })));
  const required = new Set((update.json as { required: string[] }).required);
  const queue = names.map((name, i) => ({ name, i })).filter(({ name }) => required.has(files[`/${name}`]!));
  if (queue.length !== FILES) throw new Error(`the stand-in asked for ${queue.length} of ${FILES} files`);
  await Promise.all(
    Array.from({ length: UPLOAD_CONCURRENCY }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await call(target, 'PUT', `/deploys/${id}/files/${next.name}`, fileContent(base, run, next.i), 'application/octet-stream');
      }
    }),
  );
  const state = (await call(target, 'GET', `/deploys/${id}`)).json as { state: string };
  if (state.state !== 'ready') throw new Error(`deploy ${id} is ${state.state}, not ready`);
  return (FILES * FILE_BYTES) / (1024 * 1024) / ((performance.now() - started) / 1000);
}

/** A deterministic 200 MB stream: a random MiB repeated, each MiB stamped with its index. */
function bigStream(base: Buffer): Readable {
  let index = 0;
  return new Readable({
    read() {
      if (index * CHUNK >= BIG_FILE_BYTES) return this.push(null);
      const chunk = Buffer.from(base);
      chunk.writeUInt32BE(index++, 0);
      this.push(chunk);
    },
  });
}

/**
 * A TCP relay in front of the stand-in that holds every chunk `oneWayMs` in each direction: Netlify as seen over a
 * network rather than loopback. Order is kept (same delay for every chunk); bandwidth is not limited.
 */
async function latencyRelay(target: URL, oneWayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      s.setNoDelay(true); // as Node's HTTP sockets are: the relay adds latency, not Nagle's algorithm
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const relay = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => setTimeout(() => to.writable && to.write(chunk), oneWayMs));
      from.on('end', () => setTimeout(() => to.end(), oneWayMs));
    };
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

async function productionToken(issuer: RunningIssuer, service: Server, site: string): Promise<string> {
  const claims = githubShapedClaims(issuer.url, 'production', Math.floor(Date.now() / 1000));
  const subject = signRs256(claims, issuer.key.kid, privateKeyOf(issuer.key));
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    subject_token: subject,
    resource: `site:${site}`,
  });
  const res = await fetch(`${service.url}/token`, { method: 'POST', body });
  const json = (await res.json()) as { access_token?: string };
  if (!json.access_token) throw new Error(`token exchange failed: ${res.status} ${JSON.stringify(json)}`);
  return json.access_token;
}

export async function benchGateway(log: (line: string) => void = () => undefined): Promise<GatewayBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'deploy-sts-bench-gateway-'));
  const issuer = await startIssuer(newIssuerKey());
  let standin: NetlifyStandin | undefined;
  const servers: Server[] = [];
  let relay: { url: string; close(): Promise<void> } | undefined;
  try {
    standin = await startNetlifyStandin();
    const site = standin.addSite({ name: 'acme-docs' });
    const policies = join(work, 'policies');
    mkdirSync(policies);
    writeFileSync(
      join(policies, 'docs.yml'),
      [
        'site: docs',
        'repository: acme/docs',
        'repository_id: "892043217"',
        'upstream:',
        '  netlify:',
        `    site_id: ${site.id}`,
        '    credential: netlify-bench',
        'rules:',
        '  - name: production',
        '    context: production',
        '    permissions: [deployments:write]',
        '    when: { event_name: push, ref: refs/heads/main }',
        '',
      ].join('\n'),
    );
    const kek = join(work, 'kek');
    writeFileSync(kek, randomBytes(32).toString('base64'), { mode: 0o600 });
    /** A service process whose gateway forwards to `upstream`, with the stand-in's token stored, and a deploy token. */
    const startGateway = async (name: string, upstream: string): Promise<{ server: Server; target: Target }> => {
      const dataDir = join(work, name);
      const env = { DEPLOY_STS_NETLIFY_API_URL: upstream, DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kek };
      execFileSync(process.execPath, [join(ROOT, 'build', 'exchange-service', 'cli.js'), 'credentials', 'set', 'netlify-bench'], {
        input: standin!.token,
        env: { PATH: process.env.PATH, DEPLOY_STS_DATA_DIR: dataDir, ...env },
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      const server = await startService({
        issuer: issuer.url, audience: BENCH_AUDIENCE, policies, dataDir, keyEncryptionKeyFile: kek, env,
        ...(process.env.BENCH_PROFILE ? { cpuProfileDir: process.env.BENCH_PROFILE } : {}),
      });
      servers.push(server);
      return { server, target: { base: `${server.url}/gateway/netlify/api/v1`, authorization: `Bearer ${await productionToken(issuer, server, 'docs')}` } };
    };
    const base = randomBytes(FILE_BYTES);
    /** ROUNDS deploys each way, alternating; the service's CPU per gateway deploy. */
    const compare = async (label: string, direct: Target, gateway: { server: Server; target: Target }, relay?: { server: Server; target: Target }) => {
      const directMBps: number[] = [];
      const gatewayMBps: number[] = [];
      const serviceCpu: number[] = [];
      const relayMBps: number[] = [];
      const relayCpu: number[] = [];
      await deploy(direct, site.id, base, `${label}-direct-warm-up`);
      await deploy(gateway.target, site.id, base, `${label}-gateway-warm-up`);
      if (relay) await deploy(relay.target, site.id, base, `${label}-relay-warm-up`);
      for (let r = 0; r < ROUNDS; r++) {
        directMBps.push(await deploy(direct, site.id, base, `${label}-direct-${r}`));
        if (relay) {
          const before = relay.server.cpuSeconds();
          relayMBps.push(await deploy(relay.target, site.id, base, `${label}-relay-${r}`));
          relayCpu.push(relay.server.cpuSeconds() - before);
        }
        const cpuBefore = gateway.server.cpuSeconds();
        gatewayMBps.push(await deploy(gateway.target, site.id, base, `${label}-gateway-${r}`));
        serviceCpu.push(gateway.server.cpuSeconds() - cpuBefore);
        log(`gateway (${label}): round ${r + 1}: direct ${round(directMBps.at(-1)!, 1)} MB/s, through the gateway ${round(gatewayMBps.at(-1)!, 1)} MB/s`);
      }
      return { directMBps, gatewayMBps, serviceCpu, relayMBps, relayCpu, ratio: median(gatewayMBps) / median(directMBps) };
    };

    const onLoopback = await startGateway('data-loopback', standin.apiUrl);
    const plainRelay = await startPlainRelay(new URL(standin.apiUrl).origin);
    servers.push(plainRelay);
    const loopback = await compare('loopback', { base: standin.apiUrl, authorization: `Bearer ${standin.token}` }, onLoopback, {
      server: plainRelay,
      target: { base: `${plainRelay.url}${new URL(standin.apiUrl).pathname}`, authorization: `Bearer ${standin.token}` },
    });
    relay = await latencyRelay(new URL(standin.apiUrl), WAN_ONE_WAY_MS);
    const wan = await compare(`${WAN_ONE_WAY_MS} ms`, { base: relay.url, authorization: `Bearer ${standin.token}` }, await startGateway('data-wan', relay.url));
    const service = onLoopback.server;
    const gateway = onLoopback.target;
    const { directMBps, gatewayMBps, serviceCpu } = loopback;

    // One 200 MB file through the gateway, RSS sampled every 20 ms.
    const big = randomBytes(CHUNK);
    const hash = createHash('sha1');
    for await (const chunk of bigStream(big)) hash.update(chunk as Buffer);
    const sha = hash.digest('hex');
    const created = await call(gateway, 'POST', `/sites/${site.id}/deploys`, Buffer.from(JSON.stringify({ draft: false })));
    const id = (created.json as { id: string }).id;
    await call(gateway, 'PUT', `/sites/${site.id}/deploys/${id}`, Buffer.from(JSON.stringify({ files: { '/big.bin': sha }, draft: false, async: false })));
    const pid = service.pid;
    const rssBefore = rssOf(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssOf(pid));
    }, 20);
    const started = performance.now();
    try {
      await call(gateway, 'PUT', `/deploys/${id}/files/big.bin`, bigStream(big), 'application/octet-stream', BIG_FILE_BYTES);
    } finally {
      clearInterval(sampler);
    }
    rssPeak = Math.max(rssPeak, rssOf(pid));
    const bigFileSeconds = (performance.now() - started) / 1000;
    const uploaded = standin.deploys.get(id)?.uploads.find((u) => u.path === 'big.bin');
    if (uploaded?.size !== BIG_FILE_BYTES) throw new Error(`the 200 MB file arrived as ${uploaded?.size} bytes`);

    const medianDirect = median(directMBps);
    const medianGateway = median(gatewayMBps);
    const ratio = loopback.ratio;
    const growth = (rssPeak - rssBefore) / (1024 * 1024);
    return {
      files: FILES,
      totalMB: round((FILES * FILE_BYTES) / (1024 * 1024), 1),
      rounds: ROUNDS,
      directMBps: directMBps.map((v) => round(v, 1)),
      gatewayMBps: gatewayMBps.map((v) => round(v, 1)),
      medianDirectMBps: round(medianDirect, 1),
      medianGatewayMBps: round(medianGateway, 1),
      ratio: round(ratio, 3),
      serviceCpuSecondsPerDeploy: serviceCpu.map((v) => round(v, 2)),
      relayMBps: loopback.relayMBps.map((v) => round(v, 1)),
      relayCpuSecondsPerDeploy: loopback.relayCpu.map((v) => round(v, 2)),
      relayRatio: round(median(loopback.relayMBps) / medianDirect, 3),
      wan: {
        oneWayMs: WAN_ONE_WAY_MS,
        directMBps: wan.directMBps.map((v) => round(v, 1)),
        gatewayMBps: wan.gatewayMBps.map((v) => round(v, 1)),
        ratio: round(wan.ratio, 3),
      },
      bigFileMB: BIG_FILE_BYTES / (1024 * 1024),
      bigFileSeconds: round(bigFileSeconds, 2),
      rssBeforeMB: round(rssBefore / (1024 * 1024), 1),
      rssPeakMB: round(rssPeak / (1024 * 1024), 1),
      rssGrowthMB: round(growth, 1),
      targets: [
        { target: 'gateway throughput >= 90% of direct (1,000 files / 100 MB, loopback)', value: `${round(ratio * 100, 1)}%`, met: ratio >= 0.9 },
        { target: `gateway throughput >= 90% of direct (same, ${WAN_ONE_WAY_MS} ms each way to the stand-in)`, value: `${round(wan.ratio * 100, 1)}%`, met: wan.ratio >= 0.9 },
        { target: 'gateway RSS growth <= 64 MB while 200 MB streams', value: `${round(growth, 1)} MB`, met: growth <= 64 },
      ],
    };
  } finally {
    for (const server of servers) await server.stop();
    await relay?.close();
    await standin?.close();
    await issuer.close();
    agent.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

export function gatewayReport(r: GatewayBenchResult): string {
  return [
    `\n8. Netlify deploy gateway: ${r.files} files / ${r.totalMB} MB per deploy, ${UPLOAD_CONCURRENCY} uploads at a time, ${r.rounds} rounds alternating`,
    `   straight to the stand-in: ${r.directMBps.join(', ')} MB/s (median ${r.medianDirectMBps})`,
    `   through the gateway:      ${r.gatewayMBps.join(', ')} MB/s (median ${r.medianGatewayMBps}) = ${round(r.ratio * 100, 1)}% of direct`,
    `   service CPU per gateway deploy: ${r.serviceCpuSecondsPerDeploy.join(', ')} s (${round((median(r.serviceCpuSecondsPerDeploy) * 1e6) / r.files, 0)} µs per file request)`,
    `   through a plain Node relay (the floor): ${r.relayMBps.join(', ')} MB/s = ${round(r.relayRatio * 100, 1)}% of direct; relay CPU per deploy ${r.relayCpuSecondsPerDeploy.join(', ')} s (${round((median(r.relayCpuSecondsPerDeploy) * 1e6) / r.files, 0)} µs per file request)`,
    `   with ${r.wan.oneWayMs} ms each way to the stand-in: direct ${r.wan.directMBps.join(', ')} MB/s, through the gateway ${r.wan.gatewayMBps.join(', ')} MB/s = ${round(r.wan.ratio * 100, 1)}% of direct`,
    `   one ${r.bigFileMB} MB file through the gateway in ${r.bigFileSeconds} s: service RSS ${r.rssBeforeMB} -> peak ${r.rssPeakMB} MB (growth ${r.rssGrowthMB} MB)`,
  ].join('\n');
}

if (process.argv[1]?.endsWith('/bench/gateway.js')) {
  const result = await benchGateway((line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${gatewayReport(result)}\n${r2(result)}\n`);
}

function r2(result: GatewayBenchResult): string {
  return result.targets.map((t) => `   ${t.met ? 'met' : 'NOT MET'}: ${t.target}: ${t.value}`).join('\n');
}
