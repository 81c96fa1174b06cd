/**
 * The one PostgreSQL harness, for the tests (test/postgres/) and the benchmark (bench/run.ts). It lives in testing/,
 * beside neither, so that bench/ never imports test/ and both run the same code (tsc compiles it for the benchmark;
 * vitest reads it as source).
 *
 * A real, throw-away PostgreSQL server: `initdb` and `pg_ctl` into a temp dir, listening on a free
 * loopback port only (no unix socket), password authentication (scram-sha-256) so URLs carry a real password.
 * Running as root (CI does), the server runs as an unprivileged user (`postgres`, else `nobody`) because postgres
 * refuses root. A watchdog process stops the server and removes its directory if the test process dies without
 * calling `stop()`, so no postgres outlives the run.
 * When the binaries are missing or the server cannot start, `startPostgres` rejects with a message saying how to
 * install them; set DEPLOY_STS_SKIP_POSTGRES=1 to skip these tests instead (see `SKIP_POSTGRES`).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

export { freePort };

/** PostgreSQL cannot be started here (no binaries, no usable user or directory, the server failed to start). */
export class PostgresUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PostgresUnavailable';
  }
}

export interface PostgresOptions {
  /**
   * PostgreSQL's own durability (fsync on, full page writes): what the benchmark measures, the same promise as the
   * service's SQLite default (FULL). Off by default: the tests never survive a power cut and run faster without it.
   */
  durable?: boolean;
}

export const SKIP_POSTGRES = process.env.DEPLOY_STS_SKIP_POSTGRES === '1';

export interface TestPostgres {
  /** `postgres://sts:<password>@127.0.0.1:<port>/postgres` (the maintenance database). */
  url: string;
  password: string;
  port: number;
  /** A new empty database on this server; resolves its URL. */
  createDatabase(): Promise<string>;
  /** Stop the server (fast shutdown: open connections are cut), keeping its data. */
  stopServer(): Promise<void>;
  /** Start it again on the same port with the same data. */
  startServer(): Promise<void>;
  restart(): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** The server's version (e.g. `PostgreSQL 15.18`) and the settings that matter for durability and size. */
  serverInfo(): Promise<{ version: string; settings: Record<string, string> }>;
  /** CPU seconds (user + system) used so far by the postmaster and every process it started, exited ones included. */
  cpuSeconds(): number;
  /** Stop the server and delete everything. Idempotent. */
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'install the PostgreSQL server (Debian/Ubuntu: `apt-get install -y postgresql`) or set DEPLOY_STS_SKIP_POSTGRES=1 to skip the PostgreSQL tests';

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

function hasServerBinaries(dir: string): boolean {
  return ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(dir, b)));
}

/**
 * The directory holding initdb, pg_ctl and postgres: DEPLOY_STS_PG_BIN when set (and then only it), else PATH
 * (symlinks resolved), then the usual install places.
 */
export function findPostgresBinDir(): string | undefined {
  const chosen = process.env.DEPLOY_STS_PG_BIN;
  if (chosen) return hasServerBinaries(chosen) ? chosen : undefined;
  const candidates: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const initdb = join(dir, 'initdb');
    if (existsSync(initdb)) candidates.push(dirname(realpathSync(initdb)));
  }
  for (const root of ['/usr/lib/postgresql', '/usr/pgsql']) {
    if (!existsSync(root)) continue;
    const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(root, v, 'bin')));
  }
  candidates.push('/usr/local/pgsql/bin', '/opt/homebrew/bin', '/usr/local/bin');
  return candidates.find(hasServerBinaries);
}

function lookupUser(name: string): RunAs | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const [, , uid, gid] = line.split(':');
    return uid && gid && Number(uid) !== 0 ? { name, uid: Number(uid), gid: Number(gid) } : undefined;
  } catch {
    return undefined;
  }
}

/** Postgres refuses to run as root: pick the unprivileged user it runs as (none when we are not root). */
function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of [process.env.DEPLOY_STS_PG_USER, 'postgres', 'nobody']) {
    const user = name ? lookupUser(name) : undefined;
    if (user) return user;
  }
  throw new PostgresUnavailable(`running as root and no unprivileged user (postgres, nobody) exists to run PostgreSQL as; set DEPLOY_STS_PG_USER`);
}

interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  timeout: number;
}

/** Options that run a child as the server's user (libuv drops root's supplementary groups along with uid/gid). */
function asUser(user: RunAs | undefined, cwd: string): RunOptions {
  return {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', HOME: cwd },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    timeout: 60_000,
  };
}

function run(file: string, args: string[], options: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args[0] ?? ''} failed: ${String(stderr).trim() || error.message}`));
      else resolve(String(stdout));
    });
  });
}

/** A directory the server's user can write, under the temp dir (or /tmp when the temp dir is private to root). */
function makeBaseDir(user: RunAs | undefined): string {
  for (const parent of [...new Set([tmpdir(), '/tmp', '/var/tmp', '/dev/shm'])]) {
    if (!existsSync(parent)) continue;
    const dir = mkdtempSync(join(parent, 'deploy-sts-pg-'));
    if (!user) return dir;
    chownSync(dir, user.uid, user.gid);
    try {
      execFileSync('test', ['-w', dir, '-a', '-x', dir], asUser(user, '/'));
      return dir;
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw new PostgresUnavailable(`no temp directory is reachable by the user ${user?.name} that PostgreSQL runs as`);
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100;

/** Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * The postmaster's CPU, the CPU of its children that have exited (cutime, cstime: the postmaster reaps them) and
 * the CPU of its live children (backends, WAL writer, checkpointer, …): every PostgreSQL process is one of these.
 */
function serverCpuSeconds(postmaster: number): number {
  const own = statFields(postmaster);
  if (!own) return NaN;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** Stop the postmaster whose pid file is in `dataDir` at once (SIGQUIT: immediate shutdown). Synchronous. */
function killServerSync(dataDir: string): void {
  try {
    const pid = postmasterPid(dataDir);
    if (pid) process.kill(pid, 'SIGQUIT');
  } catch {
    // already gone
  }
}

/** A detached shell that outlives us only to clean up: when our process is gone it stops the server and deletes the dir. */
function startWatchdog(base: string, dataDir: string): number | undefined {
  const script = `
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
    sleep 2; rm -rf "$2"`;
  const child = spawn('sh', ['-c', script, 'deploy-sts-pg-watchdog', String(process.pid), base, dataDir], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid;
}

let counter = 0;

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const bin = findPostgresBinDir();
  if (!bin) throw new PostgresUnavailable(`PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found ${process.env.DEPLOY_STS_PG_BIN ? `in DEPLOY_STS_PG_BIN (${process.env.DEPLOY_STS_PG_BIN})` : 'on PATH or in /usr/lib/postgresql/*/bin'}: ${INSTALL_HINT}`);
  const user = serverUser();
  const base = makeBaseDir(user);
  const dataDir = join(base, 'data');
  const logFile = join(base, 'server.log');
  const password = randomBytes(12).toString('hex');
  const runAs = asUser(user, base);
  let stopped = false;
  const onExit = () => {
    killServerSync(dataDir);
    rmSync(base, { recursive: true, force: true });
  };

  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const fail = (error: unknown): Error =>
    new PostgresUnavailable(`PostgreSQL could not be started for the tests (${(error as Error).message})\n${log().slice(-2000)}\n${INSTALL_HINT}`);

  try {
    const pwfile = join(base, 'pw');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(pwfile, user.uid, user.gid);
    await run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'sts', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], runAs);
    rmSync(pwfile, { force: true });
  } catch (error) {
    rmSync(base, { recursive: true, force: true });
    throw fail(error);
  }

  let port = 0;
  const startServer = async (): Promise<void> => {
    // pg_ctl hands -o to a shell: no value below has a space, and '' is an empty value (no unix socket at all).
    const serverOptions = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      "-c unix_socket_directories=''",
      ...(options.durable ? ['-c max_connections=100'] : ['-c fsync=off', '-c full_page_writes=off', '-c max_connections=80', '-c shared_buffers=16MB']),
    ].join(' ');
    await run(join(bin, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', serverOptions], runAs);
  };
  const stopServer = async (): Promise<void> => {
    await run(join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], runAs);
  };

  const watchdog = startWatchdog(base, dataDir);
  const stopWatchdog = () => {
    try {
      if (watchdog) process.kill(watchdog, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  try {
    // A free port may be taken between the probe and the server's bind: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await startServer();
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    const wrapped = fail(error);
    onExit();
    process.off('exit', onExit);
    stopWatchdog();
    throw wrapped;
  }

  const urlFor = (database: string) => `postgres://sts:${password}@127.0.0.1:${port}/${database}`;
  const url = urlFor('postgres');
  const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    password,
    port,
    async createDatabase() {
      const name = `t${process.pid}_${++counter}`;
      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      return urlFor(name);
    },
    stopServer,
    startServer,
    async restart() {
      await stopServer();
      await startServer();
    },
    log,
    serverInfo: () =>
      admin(async (client) => {
        const shown = await client.query<{ name: string; value: string }>(
          `SELECT name, current_setting(name) AS value FROM pg_settings
           WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_connections')`,
        );
        const { server_version: serverVersion, ...settings } = Object.fromEntries(shown.rows.map((r) => [r.name, r.value]));
        return { version: `PostgreSQL ${serverVersion ?? '?'}`, settings };
      }),
    cpuSeconds() {
      const pid = postmasterPid(dataDir);
      return pid ? serverCpuSeconds(pid) : NaN;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer().catch(() => killServerSync(dataDir));
      process.off('exit', onExit);
      stopWatchdog();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
