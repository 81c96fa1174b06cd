/**
 * What a GitHub runner gives a JavaScript action, on loopback: the OIDC token endpoint (signing with the test
 * issuer), the file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV, GITHUB_STEP_SUMMARY), INPUT_* and STATE_*
 * variables — and a way to run the committed dist/ bundles as the runner would, under this Node (24).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TestIssuer } from '../../helpers/issuer.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const RECORDER = pathToFileURL(fileURLToPath(new URL('./record-writes.mjs', import.meta.url))).href;

export interface RunnerTokenEndpoint {
  /** The value for ACTIONS_ID_TOKEN_REQUEST_URL (has a query, so core appends `&audience=`). */
  requestUrl: string;
  requestToken: string;
  /** Audiences asked for, one per token handed out. */
  audiences: string[];
  close(): Promise<void>;
}

/** GitHub's per-job OIDC endpoint: GET with the request token as Bearer, `audience` in the query. */
export async function startRunnerTokenEndpoint(issuer: TestIssuer, claims: Record<string, unknown> = {}): Promise<RunnerTokenEndpoint> {
  const requestToken = `runner-request-token-${Math.random().toString(36).slice(2)}`;
  const audiences: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://runner');
    if (req.method !== 'GET' || url.pathname !== '/idtoken' || req.headers.authorization !== `Bearer ${requestToken}`) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'unauthorized' }));
      return;
    }
    const audience = url.searchParams.get('audience') ?? 'https://github.com/acme';
    audiences.push(audience);
    issuer.token({ ...claims, aud: audience }).then(
      (value) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ value }));
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    requestUrl: `http://127.0.0.1:${port}/idtoken?api-version=2.0`,
    requestToken,
    audiences,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Parses the `name<<delimiter ... delimiter` records core writes to GITHUB_OUTPUT / _STATE / _ENV. */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^=<]+)<<(.+)$/.exec(lines[i]!);
    if (match) {
      const [, name, delimiter] = match;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) body.push(lines[i]!);
      values[name!] = body.join('\n');
    } else if (lines[i]!.includes('=')) {
      const at = lines[i]!.indexOf('=');
      values[lines[i]!.slice(0, at)] = lines[i]!.slice(at + 1);
    }
  }
  return values;
}

export interface TraceEvent {
  /** `stdout`, `stderr`, or `file:<path>`. */
  channel: string;
  text: string;
}

export interface StepResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  exportedEnv: Record<string, string>;
  summary: string;
  /** Every write of the step, in order. */
  trace: TraceEvent[];
}

export interface StepOptions {
  inputs?: Record<string, string>;
  /** Extra environment (ACTIONS_ID_TOKEN_REQUEST_*, GITHUB_EVENT_NAME, STATE_*, …). */
  env?: Record<string, string>;
}

/** A job's workspace: runs steps with fresh file-command files each, in a temp dir removed by `cleanup`. */
export interface Job {
  dir: string;
  run(bundle: 'main' | 'post', options?: StepOptions): Promise<StepResult>;
  cleanup(): Promise<void>;
}

/** action.yml says `runs.using: node24`: the bundles must be tried under Node 24 or later, never an older one. */
export function assertNodeForBundles(version: string = process.versions.node): void {
  const major = Number(version.split('.')[0]);
  if (!(major >= 24)) {
    throw new Error(`The end-to-end tests run dist/ as a runner does, under Node 24; this is Node ${version}. Run them with \`npm test\` or \`npm exec -- vitest\`, which use the node devDependency.`);
  }
}

export async function startJob(): Promise<Job> {
  assertNodeForBundles();
  const dir = await mkdtemp(join(tmpdir(), 'deploy-sts-job-'));
  let step = 0;
  return {
    dir,
    async run(bundle, options = {}) {
      step++;
      const files = {
        GITHUB_OUTPUT: join(dir, `output-${step}`),
        GITHUB_STATE: join(dir, `state-${step}`),
        GITHUB_ENV: join(dir, `env-${step}`),
        GITHUB_STEP_SUMMARY: join(dir, `summary-${step}`),
      };
      for (const file of Object.values(files)) await writeFile(file, '');
      const tracePath = join(dir, `trace-${step}.jsonl`);
      const inputs = Object.fromEntries(Object.entries(options.inputs ?? {}).map(([k, v]) => [`INPUT_${k.replace(/ /g, '_').toUpperCase()}`, v]));
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        RUNNER_TEMP: dir,
        GITHUB_ACTIONS: 'true',
        CI: 'true',
        GITHUB_REPOSITORY: 'acme/docs',
        GITHUB_EVENT_NAME: 'push',
        DEPLOY_STS_TEST_TRACE: tracePath,
        ...files,
        ...inputs,
        ...options.env,
      };
      const { exitCode, stdout, stderr } = await new Promise<{ exitCode: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', RECORDER, join(root, 'dist', bundle, 'index.js')],
          { env, cwd: dir, timeout: 60_000 },
          (error, out, err) => {
            const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
            resolve({ exitCode: code, stdout: out, stderr: err });
          },
        );
      });
      const read = (path: string) => readFile(path, 'utf8');
      const traceText = await read(tracePath).catch(() => '');
      return {
        exitCode,
        stdout,
        stderr,
        outputs: parseFileCommands(await read(files.GITHUB_OUTPUT)),
        state: parseFileCommands(await read(files.GITHUB_STATE)),
        exportedEnv: parseFileCommands(await read(files.GITHUB_ENV)),
        summary: await read(files.GITHUB_STEP_SUMMARY),
        trace: traceText
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as TraceEvent),
      };
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** STATE_* variables for the post step, from what the main step saved (as the runner does). */
export function stateEnv(state: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
}

/** The runner's environment for a job with `permissions: id-token: write`. */
export function oidcEnv(endpoint: RunnerTokenEndpoint): Record<string, string> {
  return { ACTIONS_ID_TOKEN_REQUEST_URL: endpoint.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: endpoint.requestToken };
}
