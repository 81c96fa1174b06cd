/**
 * A throw-away PostgreSQL server for the benchmark: `initdb` and `pg_ctl` into a temp directory, listening on a free
 * loopback port only (no unix socket), password authentication. PostgreSQL refuses to run as root, so under root the
 * server runs as an unprivileged user (`postgres`, else `nobody`). Durability is PostgreSQL's default (fsync on,
 * synchronous_commit on), the same promise as the service's SQLite default (FULL).
 *
 * The server is stopped by `stop()`, by an exit handler if the benchmark throws, and by a small detached watchdog if
 * the benchmark process is killed: no postgres outlives the run. `cpuSeconds()` reads /proc for the server's own CPU.
 *
 * When PostgreSQL cannot be started, `startPostgres` rejects with `PostgresUnavailable`, whose message is the reason
 * the benchmark prints when it skips this part.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { freePort } from './processes.js';

export class PostgresUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PostgresUnavailable';
  }
}

export interface BenchPostgres {
  /** e.g. `PostgreSQL 15.18`. */
  version: string;
  /** The server settings that matter for the comparison (fsync, synchronous_commit, …), as the server reports them. */
  settings: Record<string, string>;
  /** A new empty database; resolves its URL (which holds the password: never print it). */
  createDatabase(): Promise<string>;
  /** CPU seconds (user + system) used so far by the postmaster and every process it started, exited ones included. */
  cpuSeconds(): number;
  /** The end of the server's log, for a failure message. */
  logTail(): string;
  /** Stop the server and delete its directory. Idempotent. */
  stop(): Promise<void>;
}

interface User {
  name: string;
  uid: number;
  gid: number;
}

const BINARIES = ['initdb', 'pg_ctl', 'postgres'];
const hasBinaries = (dir: string) => BINARIES.every((name) => existsSync(join(dir, name)));

/** initdb, pg_ctl and postgres: from BENCH_PG_BIN when set (then only there), else PATH (symlinks resolved), then the usual install places. */
function binDir(): string | undefined {
  const chosen = process.env.BENCH_PG_BIN;
  if (chosen) return hasBinaries(chosen) ? chosen : undefined;
  const candidates: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (existsSync(join(dir, 'initdb'))) candidates.push(dirname(realpathSync(join(dir, 'initdb'))));
  }
  for (const root of ['/usr/lib/postgresql', '/usr/pgsql']) {
    if (!existsSync(root)) continue;
    const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(root, v, 'bin')));
  }
  return candidates.find(hasBinaries);
}

function userNamed(name: string): User | undefined {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((line) => line.startsWith(`${name}:`));
  const [, , uid, gid] = entry?.split(':') ?? [];
  return uid && gid && Number(uid) !== 0 ? { name, uid: Number(uid), gid: Number(gid) } : undefined;
}

/** The user the server runs as: ourselves, unless we are root. */
function serverUser(): User | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = userNamed('postgres') ?? userNamed('nobody');
  if (!user) throw new PostgresUnavailable('running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as');
  return user;
}

interface ChildOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  timeout: number;
}

function childOptions(user: User | undefined, cwd: string): ChildOptions {
  return {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', HOME: cwd },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    timeout: 60_000,
  };
}

function exec(file: string, args: string[], options: ChildOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file.split('/').at(-1)} ${args[0] ?? ''}: ${String(stderr).trim().split('\n').at(-1) || error.message}`));
      else resolve(String(stdout));
    });
  });
}

/** A fresh directory the server's user can write (the temp dir may be private to root: then try the others). */
function baseDir(user: User | undefined): string {
  for (const parent of new Set([tmpdir(), '/tmp', '/var/tmp'])) {
    if (!existsSync(parent)) continue;
    const dir = mkdtempSync(join(parent, 'deploy-sts-bench-pg-'));
    if (!user) return dir;
    chownSync(dir, user.uid, user.gid);
    try {
      execFileSync('test', ['-w', dir, '-a', '-x', dir], childOptions(user, '/'));
      return dir;
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw new PostgresUnavailable(`no temp directory is reachable by ${user?.name}, the user PostgreSQL would run as`);
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

/** Immediate shutdown (SIGQUIT to the postmaster), synchronous: for the exit handler. */
function killNow(dataDir: string): void {
  const pid = postmasterPid(dataDir);
  try {
    if (pid) process.kill(pid, 'SIGQUIT');
  } catch {
    // already gone
  }
}

/** A detached shell that waits for this process to end, then stops the server and deletes its directory. */
function watchdog(base: string, dataDir: string): () => void {
  const script = `while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
sleep 2; rm -rf "$2"`;
  const child = spawn('sh', ['-c', script, 'deploy-sts-bench-pg-watchdog', String(process.pid), base, dataDir], { detached: true, stdio: 'ignore' });
  child.unref();
  return () => {
    try {
      if (child.pid) process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
}

export async function startPostgres(): Promise<BenchPostgres> {
  const bin = binDir();
  if (!bin) {
    const where = process.env.BENCH_PG_BIN ? `in BENCH_PG_BIN (${process.env.BENCH_PG_BIN})` : 'on PATH or in /usr/lib/postgresql/*/bin';
    throw new PostgresUnavailable(`PostgreSQL server binaries (initdb, pg_ctl, postgres) not found ${where}`);
  }
  const user = serverUser();
  const base = baseDir(user);
  const dataDir = join(base, 'data');
  const logFile = join(base, 'server.log');
  const options = childOptions(user, base);
  const password = randomBytes(16).toString('hex');
  const logTail = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '');

  const removeAll = () => {
    killNow(dataDir);
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', removeAll);
  const stopWatchdog = watchdog(base, dataDir);
  const giveUp = (error: unknown): PostgresUnavailable => {
    const tail = logTail();
    removeAll();
    process.off('exit', removeAll);
    stopWatchdog();
    return new PostgresUnavailable(`${(error as Error).message}${tail ? ` (server log: ${tail.split('\n').at(-1)})` : ''}`);
  };

  let port = 0;
  try {
    const pwfile = join(base, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(pwfile, user.uid, user.gid);
    await exec(join(bin, 'initdb'), ['-D', dataDir, '-U', 'bench', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], options);
    rmSync(pwfile);
    // The port is free when probed; another process may bind it first, so try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      // pg_ctl passes -o through a shell: no value has a space, and '' means no unix socket.
      const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=100`;
      try {
        await exec(join(bin, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', serverOptions], options);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    throw giveUp(error);
  }

  const urlOf = (database: string) => `postgres://bench:${password}@127.0.0.1:${port}/${database}`;
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: urlOf('postgres') });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  let version: string;
  let settings: Record<string, string>;
  try {
    ({ version, settings } = await admin(async (client) => {
      const shown = await client.query<{ name: string; value: string }>(
        `SELECT name, current_setting(name) AS value FROM pg_settings
         WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_connections')`,
      );
      const { server_version: serverVersion, ...rest } = Object.fromEntries(shown.rows.map((r) => [r.name, r.value]));
      return { version: `PostgreSQL ${serverVersion ?? '?'}`, settings: rest };
    }));
  } catch (error) {
    throw giveUp(error);
  }

  let databases = 0;
  let stopped = false;
  return {
    version,
    settings,
    async createDatabase() {
      const name = `bench_${++databases}`;
      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      return urlOf(name);
    },
    cpuSeconds() {
      const pid = postmasterPid(dataDir);
      return pid ? serverCpuSeconds(pid) : NaN;
    },
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      await exec(join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], options).catch(() => killNow(dataDir));
      process.off('exit', removeAll);
      stopWatchdog();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
