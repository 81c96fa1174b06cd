/**
 * The Action: the size of the committed bundles in dist/, and the time from process start to outputs written for
 * the main step, run as a runner runs it (`node dist/main/index.js`, inputs in INPUT_*, file commands in temp
 * files) against the service on loopback, with a loopback stand-in for the runner's OIDC token endpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { githubShapedClaims, privateKeyOf, signRs256, type IssuerKey } from './issuer.js';
import { median, redactTokens, round } from './stats.js';
import { ROOT } from './processes.js';

export interface ActionResult {
  /** The main step's entry from action.yml, or null when there is no action.yml / dist yet. */
  mainEntry: string | null;
  /** Bytes of every file under dist/ (null: no dist/). */
  distBytes: number | null;
  bundles: Record<string, number>;
  runs: number;
  failures: number;
  /** Process start to exit, after writing its outputs, in ms. */
  mainMs: { median: number; min: number; max: number } | null;
  /** `node -e ''` on this machine, for scale. */
  nodeStartMs: number;
  firstFailure?: string;
}

function sizeOf(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.size;
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0);
}

/** The runner's per-job token endpoint: GET with the request token as Bearer and `audience` in the query. */
async function startTokenEndpoint(key: IssuerKey, issuer: string): Promise<{ url: string; requestToken: string; close(): Promise<void> }> {
  const requestToken = `bench-request-token-${process.pid}`;
  const privateKey = privateKeyOf(key);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://runner');
    if (req.method !== 'GET' || url.pathname !== '/idtoken' || req.headers.authorization !== `Bearer ${requestToken}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"unauthorized"}');
      return;
    }
    const audience = url.searchParams.get('audience') ?? 'https://github.com/acme';
    const claims = githubShapedClaims(issuer, 'production', Math.floor(Date.now() / 1000), { aud: audience });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: signRs256(claims, key.kid, privateKey) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/idtoken?api-version=2.0`,
    requestToken,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function timeProcess(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ ms: number; code: number | null; stderr: string; stdout: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
  });
}

export function mainEntryOf(): string | null {
  const file = join(ROOT, 'action.yml');
  if (!existsSync(file)) return null;
  const match = /^\s+main:\s*['"]?([^'"\s]+)/m.exec(readFileSync(file, 'utf8'));
  return match?.[1] ?? null;
}

/** Measure the Action against `serviceUrl` (a running service that trusts `issuer`). */
export async function benchAction(options: { serviceUrl: string; key: IssuerKey; issuer: string; work: string; runs: number }): Promise<ActionResult> {
  const dist = join(ROOT, 'dist');
  const distBytes = existsSync(dist) ? sizeOf(dist) : null;
  const bundles: Record<string, number> = {};
  if (existsSync(dist)) {
    for (const name of readdirSync(dist)) {
      const index = join(dist, name, 'index.js');
      if (existsSync(index)) bundles[`${name}/index.js`] = statSync(index).size;
    }
  }
  const nodeStart: number[] = [];
  for (let i = 0; i < 5; i++) nodeStart.push((await timeProcess(['-e', ''], { PATH: process.env.PATH }, options.work)).ms);
  const mainEntry = mainEntryOf();
  const result: ActionResult = { mainEntry, distBytes, bundles, runs: 0, failures: 0, mainMs: null, nodeStartMs: round(median(nodeStart), 1) };
  const entry = mainEntry ? join(ROOT, mainEntry) : null;
  if (!entry || !existsSync(entry)) return result;

  const endpoint = await startTokenEndpoint(options.key, options.issuer);
  const times: number[] = [];
  try {
    for (let i = 0; i < options.runs; i++) {
      const dir = mkdtempSync(join(options.work, 'job-'));
      const files = {
        GITHUB_OUTPUT: join(dir, 'output'),
        GITHUB_STATE: join(dir, 'state'),
        GITHUB_ENV: join(dir, 'env'),
        GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      };
      for (const file of Object.values(files)) writeFileSync(file, '');
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: dir,
        RUNNER_TEMP: dir,
        GITHUB_ACTIONS: 'true',
        CI: 'true',
        GITHUB_REPOSITORY: 'acme/docs',
        GITHUB_EVENT_NAME: 'push',
        ...files,
        INPUT_URL: options.serviceUrl,
        INPUT_SITE: 'docs',
        INPUT_SCOPE: '',
        INPUT_AUDIENCE: '',
        'INPUT_EXPORT-ENV': '',
        INPUT_REVOKE: 'true',
        ACTIONS_ID_TOKEN_REQUEST_URL: endpoint.url,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: endpoint.requestToken,
      };
      const run = await timeProcess([entry], env, dir);
      const outputs = readFileSync(files.GITHUB_OUTPUT, 'utf8');
      result.runs++;
      if (run.code === 0 && /^token<</m.test(outputs) && /^rule<</m.test(outputs)) {
        times.push(run.ms);
      } else {
        result.failures++;
        result.firstFailure ??= redactTokens(`exit ${run.code}: ${run.stdout.slice(-600)} ${run.stderr.slice(-600)}`);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await endpoint.close();
  }
  if (times.length > 0) {
    result.mainMs = { median: round(median(times), 1), min: round(Math.min(...times), 1), max: round(Math.max(...times), 1) };
  }
  return result;
}
