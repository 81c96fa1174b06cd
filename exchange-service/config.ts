/**
 * The service's configuration: every option comes from a CLI flag or `DEPLOY_STS_<NAME>`, validated with zod.
 * A bad value is a start-up error naming the variable, the value's problem and the fix.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { isLoopbackHost } from '../shared/wire.js';
import { GITHUB_ISSUER, issuerProblem, normaliseIssuer } from './oidc/issuers.js';
import { OPTION_NAMES, flagName, type OptionName } from './option-names.js';
import { EXAMPLE_POLICIES_DIR } from './package-root.js';
import { didYouMean } from './suggest.js';
import { isPostgresUrl, redactDatabaseUrl } from './storage/database-url.js';

/** `serve --dev-defaults` (`npm start`): the example policies shipped with the package, wherever it is installed. */
export const DEV_DEFAULTS = {
  DATA_DIR: '.data',
  POLICIES: EXAMPLE_POLICIES_DIR,
  HOST: '127.0.0.1',
  PORT: '8080',
  DEV_ISSUER: '1',
} as const;

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['', '0', '1', 'true', 'false', 'yes', 'no'].includes(v), 'must be 1/0, true/false or yes/no')
  .transform((v) => ['1', 'true', 'yes'].includes(v));

const url = (what: string) =>
  z
    .string()
    .trim()
    .refine((v) => URL.canParse(v), `must be an absolute URL (${what})`)
    .transform((v) => (v.endsWith('/') ? v.slice(0, -1) : v));

/** Where /metrics is served by default: loopback only, never on the public listener. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT` or `[IPv6]:PORT`, port 0 to 65535 (0: any free port). */
export function parseListenAddress(value: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? match[2]!, port };
}

export const NETLIFY_API_DEFAULT = 'https://api.netlify.com/api/v1';

/** A gateway upstream API base: https, or http on loopback only (tests and local stand-ins). No query, no fragment. */
export function upstreamBaseProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URL, e.g. https://api.netlify.com/api/v1';
  const u = new URL(value);
  if (u.username || u.password) return 'must not hold credentials (the gateway sends the stored credential itself)';
  // `new URL('…/v1?').search` is '': an empty query or fragment marker would still swallow every request's path.
  if (u.search || u.hash || value.includes('?') || value.includes('#')) return 'must not have a query or a fragment';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return undefined;
  return 'must use https:// (http:// is accepted only for loopback addresses)';
}

const upstreamBase = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = upstreamBaseProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .transform((v) => v.replace(/\/+$/, ''));

/** The deploy gateway's settings. */
export interface GatewayConfig {
  /** DEPLOY_STS_NETLIFY_API_URL */
  netlifyApiUrl: string;
  /** Largest request body streamed through (one uploaded file), bytes. */
  maxBodyBytes: number;
  /** Largest JSON body parsed and rewritten (deploy create/update with its file digests), and JSON answer inspected. */
  maxJsonBytes: number;
  /** Longest one gateway request may take, upload and answer included. */
  timeoutMs: number;
  /** Deploys one preview token may create (a leaked one makes no more); 0 = unlimited. */
  previewDeploysPerToken: number;
  /** Calls one token may have in flight at once, on one replica (a leaked one cannot hold the upstream sockets). */
  callsPerToken: number;
}

// Exactly one entry per name of option-names.ts (`satisfies`: a missing or extra key does not compile).
const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().trim().min(1).default('.data'),
  POLICIES: z.string().trim().min(1),
  ISSUER: z
    .string()
    .default(GITHUB_ISSUER)
    .transform((v) => v.split(',').map((s) => normaliseIssuer(s.trim())).filter(Boolean))
    .superRefine((list, ctx) => {
      if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'names no issuer' });
      for (const issuer of list) {
        const problem = issuerProblem(issuer);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }
    }),
  JWKS_FILE: z.string().trim().min(1).optional(),
  AUDIENCE: z.string().trim().min(1).optional(),
  PUBLIC_URL: url('the URL clients use to reach this service, e.g. https://sts.example.com').optional(),
  TOKEN_AUDIENCE: z.string().trim().min(1).default('deploy-api'),
  DEV_ISSUER: bool.default(false),
  INTROSPECT_SECRET_FILE: z.string().trim().min(1).optional(),
  TRUST_PROXY: z.coerce.number().int().min(0).max(10).default(0),
  RATE_LIMIT_IP: z.coerce.number().int().min(0).default(1200),
  RATE_LIMIT_REPOSITORY: z.coerce.number().int().min(0).default(120),
  WATCH_POLICIES: bool.default(true),
  SYNCHRONOUS: z.enum(['NORMAL', 'FULL']).default('FULL'),
  DATABASE_URL: z
    .string()
    .trim()
    .transform((v) => v || undefined)
    .refine((v) => v === undefined || isPostgresUrl(v), 'must be a postgres:// or postgresql:// URL, e.g. postgres://deploy_sts:PASSWORD@db.internal:5432/deploy_sts')
    .optional(),
  KEY_ENCRYPTION_KEY_FILE: z.string().trim().min(1).optional(),
  METRICS_LISTEN: z
    .string()
    .trim()
    .default(DEFAULT_METRICS_LISTEN)
    .transform((v, ctx) => {
      if (v.toLowerCase() === 'off') return undefined;
      const parsed = parseListenAddress(v);
      if (!parsed) {
        ctx.addIssue({ code: 'custom', message: 'must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464 to scrape from another host) or off' });
        return z.NEVER;
      }
      return parsed;
    }),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  PID_FILE: z.string().trim().min(1).optional(),
  // The deploy gateway (gateway/): where each platform's API is, and the per-request limits.
  NETLIFY_API_URL: upstreamBase.default(NETLIFY_API_DEFAULT),
  GATEWAY_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024 * 1024),
  GATEWAY_MAX_JSON_BYTES: z.coerce.number().int().min(1024).max(256 * 1024 * 1024).default(16 * 1024 * 1024),
  GATEWAY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(600),
  GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: z.coerce.number().int().min(0).max(1000).default(5),
  GATEWAY_CALLS_PER_TOKEN: z.coerce.number().int().min(1).max(1000).default(16),
} satisfies Record<OptionName, z.ZodType>);

export type RawConfig = z.input<typeof schema>;



/** Every option's name as the suffix of its variable (`DATA_DIR` ↔ DEPLOY_STS_DATA_DIR ↔ --data-dir): option-names.ts. */
export { OPTION_NAMES, flagName };

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  policies: string;
  issuers: string[];
  jwksFile: string | undefined;
  /** The audience GitHub tokens must carry; undefined = the public URL (known after listen). */
  audience: string | undefined;
  publicUrl: string | undefined;
  tokenAudience: string;
  devIssuer: boolean;
  introspectSecretFile: string | undefined;
  trustProxy: number;
  /** Exchanges per minute per client IP / per repository_id; 0 = unlimited. */
  rateLimitIp: number;
  rateLimitRepository: number;
  /** Reload policies when the directory changes (SIGHUP always reloads). */
  watchPolicies: boolean;
  synchronous: 'NORMAL' | 'FULL';
  /** PostgreSQL shared by replicas; undefined = SQLite in the data directory. Holds a password: never print it. */
  databaseUrl: string | undefined;
  /** File of 32 random bytes (base64 or hex) sealing stored platform credentials and the signing keys kept in PostgreSQL. */
  keyEncryptionKeyFile: string | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** `serve` writes its PID here once it listens (atomically) and removes it on exit; with --dev-defaults
   *  DATA_DIR/deploy-sts.pid. */
  pidFile: string | undefined;
  /** The metrics listener (DEPLOY_STS_METRICS_LISTEN); undefined = off. Never the public listener. */
  metricsListen: ListenAddress | undefined;
  /** The deploy gateway: upstream API URLs and per-request limits. */
  gateway: GatewayConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** What a required option is, for `… is required: <what>, e.g. <example>`. */
const REQUIRED: Partial<Record<string, string>> = {
  POLICIES: 'the directory of policy files, e.g. ./policies',
};

/** The whole numbers each numeric option takes. */
const WHOLE_NUMBERS: Partial<Record<string, string>> = {
  PORT: 'from 0 to 65535',
  TRUST_PROXY: 'from 0 to 10',
  RATE_LIMIT_IP: '(0 or more; 0 = unlimited)',
  RATE_LIMIT_REPOSITORY: '(0 or more; 0 = unlimited)',
  GATEWAY_MAX_BODY_BYTES: 'of bytes, at least 1024',
  GATEWAY_MAX_JSON_BYTES: 'of bytes from 1024 to 268435456 (256 MiB)',
  GATEWAY_TIMEOUT_SECONDS: 'of seconds from 1 to 86400',
  GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN: 'from 0 to 1000 (0 = unlimited)',
  GATEWAY_CALLS_PER_TOKEN: 'from 1 to 1000',
};

/** A validation issue as a sentence about the option (`is required: …`, `must be …`), never the validator's words. */
function inWords(key: string, issue: z.core.$ZodIssue, value: string | undefined): string {
  const words = sentence(key, issue, value);
  // `DEPLOY_STS_POLICIES (--policies) is required: …`; every other problem after a colon.
  return words.startsWith('is required') ? ` ${words}` : words.startsWith(': ') ? words : `: ${words}`;
}

function sentence(key: string, issue: z.core.$ZodIssue, value: string | undefined): string {
  if (value === undefined && issue.code === 'invalid_type') return `is required: ${REQUIRED[key] ?? 'set it'}`;
  if (WHOLE_NUMBERS[key] && ['invalid_type', 'too_small', 'too_big', 'not_multiple_of'].includes(issue.code)) return `must be a whole number ${WHOLE_NUMBERS[key]}`;
  if (issue.code === 'invalid_value') {
    const values = issue.values.map(String);
    return `must be one of ${values.join(', ')}${value ? didYouMean(value, values) : ''}`;
  }
  if (issue.code === 'too_small' && issue.origin === 'string') return REQUIRED[key] ? `is required: ${REQUIRED[key]}` : 'must not be empty';
  // Our own messages (custom refinements) are already words: `must be …`, or a sentence of their own.
  return issue.message;
}

type Env = Record<string, string | undefined>;
type Flags = Record<string, string | undefined>;
type Options<K extends OptionName> = { [P in K]: z.output<typeof schema>[P] };

/**
 * Read and validate some options of the one schema: each from its flag (named as the env suffix, e.g. `PORT`), else
 * `DEPLOY_STS_<NAME>`, else `fallback`. Every verb reads its options through here, so a value means the same
 * everywhere and a bad one is refused the same way.
 */
function loadOptions<K extends OptionName>(names: readonly K[], env: Env, flags: Flags, fallback: Partial<Record<OptionName, string>> = {}): Options<K> {
  const raw: Record<string, string | undefined> = {};
  for (const key of names) raw[key] = flags[key] ?? env[`DEPLOY_STS_${key}`] ?? fallback[key];
  const picked = schema.pick(Object.fromEntries(names.map((n) => [n, true])) as Partial<Record<OptionName, true>>);
  const parsed = picked.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const key = String(i.path[0] ?? '');
        return `DEPLOY_STS_${key} (--${flagName(key)})${inWords(key, i, raw[key])}${raw[key] !== undefined ? ` (got ${JSON.stringify(key === 'DATABASE_URL' ? redactDatabaseUrl(raw[key]) : raw[key])})` : ''}`;
      }),
    );
  }
  return parsed.data as unknown as Options<K>;
}

/** The storage every verb opens: `tokens`, `audit` and `keys` use exactly what `serve` uses. */
export interface StorageOptions {
  dataDir: string;
  synchronous: 'NORMAL' | 'FULL';
  databaseUrl: string | undefined;
  keyEncryptionKeyFile: string | undefined;
}

export function loadStorageConfig(env: Env, flags: Flags = {}): StorageOptions {
  const c = loadOptions(['DATA_DIR', 'SYNCHRONOUS', 'DATABASE_URL', 'KEY_ENCRYPTION_KEY_FILE'], env, flags);
  return { dataDir: c.DATA_DIR, synchronous: c.SYNCHRONOUS, databaseUrl: c.DATABASE_URL, keyEncryptionKeyFile: c.KEY_ENCRYPTION_KEY_FILE };
}

/** Where the policies are, for the verbs that only read them (`policy check`, `policy explain`): default `policies`. */
export function loadPoliciesDir(env: Env, flags: Flags = {}): string {
  return loadOptions(['POLICIES'], env, flags, { POLICIES: 'policies' }).POLICIES;
}

/** What `policy explain` verifies a token against: the issuers and audience `serve` would trust, and the data dir. */
export function loadVerifierConfig(env: Env, flags: Flags = {}): { issuers: string[]; audience: string | undefined; dataDir: string } {
  const c = loadOptions(['ISSUER', 'AUDIENCE', 'PUBLIC_URL', 'DATA_DIR'], env, flags);
  return { issuers: c.ISSUER, audience: c.AUDIENCE ?? c.PUBLIC_URL, dataDir: c.DATA_DIR };
}

/** The issuers policies are loaded for (`policy check`, `policy explain`): DEPLOY_STS_ISSUER and DEPLOY_STS_DEV_ISSUER, as `serve` reads them. */
export function loadPolicyIssuers(env: Env, flags: Flags = {}): { issuers: string[]; devIssuer: boolean } {
  const c = loadOptions(['ISSUER', 'DEV_ISSUER'], env, flags);
  return { issuers: c.ISSUER, devIssuer: c.DEV_ISSUER };
}

/** What `dev token` signs for: the audience `serve --dev-defaults` expects (its URL), and the data dir of its key. */
export function loadDevTokenConfig(env: Env, flags: Flags = {}): { audience: string; dataDir: string } {
  const c = loadOptions(['AUDIENCE', 'PUBLIC_URL', 'DATA_DIR'], env, flags);
  return { audience: c.AUDIENCE ?? c.PUBLIC_URL ?? `http://${DEV_DEFAULTS.HOST}:${DEV_DEFAULTS.PORT}`, dataDir: c.DATA_DIR };
}

/** Build the configuration from flags (already named as the env suffix, e.g. `PORT`) over the environment. */
export function loadConfig(env: Env, flags: Flags = {}, devDefaults = false): Config {
  const c = loadOptions(OPTION_NAMES, env, flags, devDefaults ? DEV_DEFAULTS : {});
  const problems: string[] = [];
  const publicHost = c.PUBLIC_URL ? new URL(c.PUBLIC_URL).hostname : undefined;
  if (!isLoopbackHost(c.HOST) && !c.PUBLIC_URL) {
    problems.push(`DEPLOY_STS_PUBLIC_URL is required when the service binds a non-loopback address (DEPLOY_STS_HOST is ${c.HOST}): the audience GitHub tokens must carry and the issuer of deploy tokens derive from it, and a default like http://${c.HOST}:${c.PORT} would be the same for every deployment`);
  }
  if (c.PUBLIC_URL && publicHost && !isLoopbackHost(publicHost) && !c.PUBLIC_URL.startsWith('https://')) {
    problems.push(`DEPLOY_STS_PUBLIC_URL must use https:// (got ${c.PUBLIC_URL}); http:// is accepted only for loopback addresses`);
  }
  if (c.DEV_ISSUER && ((publicHost && !isLoopbackHost(publicHost)) || c.TRUST_PROXY > 0)) {
    problems.push('DEPLOY_STS_DEV_ISSUER=1 is refused behind a proxy or with a public URL (DEPLOY_STS_TRUST_PROXY / DEPLOY_STS_PUBLIC_URL): the dev issuer is for local demos only');
  }
  if (c.DEV_ISSUER && !isLoopbackHost(c.HOST)) {
    problems.push(`DEPLOY_STS_DEV_ISSUER=1 is refused unless the service binds a loopback address (DEPLOY_STS_HOST is ${c.HOST}); the dev issuer's key is on this machine and must never be trusted in production`);
  }
  if (c.JWKS_FILE && c.ISSUER.length !== 1) {
    problems.push('DEPLOY_STS_JWKS_FILE holds the keys of one issuer: set exactly one DEPLOY_STS_ISSUER with it');
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    port: c.PORT,
    host: c.HOST,
    dataDir: c.DATA_DIR,
    policies: c.POLICIES,
    issuers: c.ISSUER,
    jwksFile: c.JWKS_FILE,
    audience: c.AUDIENCE,
    publicUrl: c.PUBLIC_URL,
    tokenAudience: c.TOKEN_AUDIENCE,
    devIssuer: c.DEV_ISSUER,
    introspectSecretFile: c.INTROSPECT_SECRET_FILE,
    trustProxy: c.TRUST_PROXY,
    rateLimitIp: c.RATE_LIMIT_IP,
    rateLimitRepository: c.RATE_LIMIT_REPOSITORY,
    watchPolicies: c.WATCH_POLICIES,
    synchronous: c.SYNCHRONOUS,
    databaseUrl: c.DATABASE_URL,
    keyEncryptionKeyFile: c.KEY_ENCRYPTION_KEY_FILE,
    logLevel: c.LOG_LEVEL,
    pidFile: c.PID_FILE ?? (devDefaults ? join(c.DATA_DIR, 'deploy-sts.pid') : undefined),
    metricsListen: c.METRICS_LISTEN,
    gateway: { netlifyApiUrl: c.NETLIFY_API_URL, maxBodyBytes: c.GATEWAY_MAX_BODY_BYTES, maxJsonBytes: c.GATEWAY_MAX_JSON_BYTES, timeoutMs: c.GATEWAY_TIMEOUT_SECONDS * 1000,
      previewDeploysPerToken: c.GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN,
      callsPerToken: c.GATEWAY_CALLS_PER_TOKEN,
    },
  };
}

/** The effective configuration for the start-up banner: never a secret (file paths only). */
export function describeConfig(c: Config, publicUrl: string, audience: string): Record<string, string | number | boolean> {
  return {
    listen: `${c.host}:${c.port}`,
    public_url: publicUrl,
    audience,
    token_audience: c.tokenAudience,
    issuers: c.issuers.join(', '),
    jwks_file: c.jwksFile ?? '(discovery)',
    dev_issuer: c.devIssuer,
    data_dir: c.dataDir,
    policies: c.policies,
    introspect_secret_file: c.introspectSecretFile ?? '(none: only holders may introspect their own token)',
    trust_proxy: c.trustProxy,
    rate_limits: `${c.rateLimitIp}/min per IP, ${c.rateLimitRepository}/min per repository`,
    watch_policies: c.watchPolicies,
    pid_file: c.pidFile ?? '(none)',
    metrics_listen: c.metricsListen ? `${c.metricsListen.host.includes(':') ? `[${c.metricsListen.host}]` : c.metricsListen.host}:${c.metricsListen.port} (/metrics)` : 'off',
    netlify_api_url: c.gateway.netlifyApiUrl,
    gateway_limits: `${c.gateway.maxBodyBytes} bytes per request body, ${c.gateway.maxJsonBytes} bytes per JSON body, ${c.gateway.timeoutMs / 1000} s per request, ${c.gateway.previewDeploysPerToken || 'unlimited'} deploys per preview token`,
  };
}
