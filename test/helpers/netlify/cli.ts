/**
 * Run the real `netlify` CLI (the netlify-cli devDependency, its JS entry on this same Node 24) the way a workflow
 * step does: the API URL and token from the environment, nothing else inherited. HOME, XDG dirs and the working
 * directory are temp dirs so no global config, login or linked site is read; CI=1 makes it non-interactive and turns
 * telemetry off. Bounded by a timeout that kills the CLI's whole process group.
 *
 * Offline the CLI must be called with `--site <site name>` and `--no-build` (see the notes in standin.ts and the
 * gateway docs): a site id makes @netlify/config try api.netlifysdk.com, and a build resolves the site by the raw
 * `--site` value.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const NETLIFY_BIN = join(ROOT, 'node_modules', 'netlify-cli', 'bin', 'run.js');
/** Preloaded into the CLI: outside names never resolve (testing/loopback-only.mjs). */
export const LOOPBACK_GUARD = join(ROOT, 'testing', 'loopback-only.mjs');

/** Outside hosts the CLI tried and the loopback guard refused, in order of first attempt. */
export function refusedHosts(output: string): string[] {
  return [...new Set([...output.matchAll(/loopback-guard: refused (\S+)/g)].map((m) => m[1]!))];
}

export interface RunNetlifyOptions {
  /** NETLIFY_API_URL, e.g. the stand-in's apiUrl or `<service>/gateway/netlify/api/v1`. */
  apiUrl: string;
  /** NETLIFY_AUTH_TOKEN. */
  token: string;
  /** Working directory (the site's repository). */
  cwd: string;
  /** More environment variables (they win over the defaults). */
  env?: Record<string, string>;
  /** Default 90 s. */
  timeoutMs?: number;
}

export interface NetlifyRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** stdout + stderr without ANSI colour codes, for assertions on what the user sees. */
  output: string;
  durationMs: number;
}

const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

export async function runNetlify(args: readonly string[], options: RunNetlifyOptions): Promise<NetlifyRun> {
  const home = mkdtempSync(join(tmpdir(), 'netlify-home-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    TMPDIR: tmpdir(),
    CI: '1',
    NETLIFY_TELEMETRY_DISABLED: '1',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    NETLIFY_API_URL: options.apiUrl,
    NETLIFY_AUTH_TOKEN: options.token,
    // Node processes the CLI starts (bundlers, build plugins) are guarded too.
    NODE_OPTIONS: `--import=${pathToFileURL(LOOPBACK_GUARD).href}`,
    ...options.env,
  };
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', pathToFileURL(LOOPBACK_GUARD).href, NETLIFY_BIN, ...args], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, options.timeoutMs ?? 90_000);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolveExit, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolveExit([c, s]));
    });
    const out = Buffer.concat(stdout).toString('utf8');
    const err = Buffer.concat(stderr).toString('utf8');
    return { code, signal, timedOut, stdout: out, stderr: err, output: stripAnsi(`${out}\n${err}`), durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    rmSync(home, { recursive: true, force: true });
  }
}

export interface SiteDirOptions {
  /** Files of the publish directory (`build/`), path → content. */
  files: Record<string, string | Buffer>;
  /** Functions (`functions/`), file name → source, e.g. { 'hello.mjs': 'export default async () => new Response("hi")' }. */
  functions?: Record<string, string>;
}

export interface SiteDir {
  /** The repository root: run the CLI here. */
  root: string;
  /** `build`, relative to root: pass to `--dir`. */
  publishDir: string;
  /** `functions`, relative to root: pass to `--functions` (only when functions were given). */
  functionsDir: string;
  remove(): void;
}

/** A throw-away site checkout: `build/` with the given files and, optionally, `functions/`. */
export function makeSiteDir(options: SiteDirOptions): SiteDir {
  const root = mkdtempSync(join(tmpdir(), 'netlify-site-'));
  for (const [path, content] of Object.entries(options.files)) {
    const target = join(root, 'build', path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  mkdirSync(join(root, 'build'), { recursive: true });
  for (const [name, source] of Object.entries(options.functions ?? {})) {
    mkdirSync(join(root, 'functions'), { recursive: true });
    writeFileSync(join(root, 'functions', name), source);
  }
  return { root, publishDir: 'build', functionsDir: 'functions', remove: () => rmSync(root, { recursive: true, force: true }) };
}
