/**
 * The names of the service's configuration options, as the suffix of their variables (`DATA_DIR` ↔
 * DEPLOY_STS_DATA_DIR ↔ --data-dir), in the order `serve --help` lists them. config.ts validates each (its schema
 * must have exactly these keys, a compile-time check); this list lives apart so that the command line can name
 * the options (serve's flags, the DEPLOY_STS_* typo warning every verb prints) without loading the validation.
 */
export const OPTION_NAMES = [
  'PORT',
  'HOST',
  'DATA_DIR',
  'POLICIES',
  'ISSUER',
  'JWKS_FILE',
  'AUDIENCE',
  'PUBLIC_URL',
  'TOKEN_AUDIENCE',
  'DEV_ISSUER',
  'INTROSPECT_SECRET_FILE',
  'TRUST_PROXY',
  'RATE_LIMIT_IP',
  'RATE_LIMIT_REPOSITORY',
  'WATCH_POLICIES',
  'SYNCHRONOUS',
  'DATABASE_URL',
  'KEY_ENCRYPTION_KEY_FILE',
  'METRICS_LISTEN',
  'LOG_LEVEL',
  'PID_FILE',
  'NETLIFY_API_URL',
  'GATEWAY_MAX_BODY_BYTES',
  'GATEWAY_MAX_JSON_BYTES',
  'GATEWAY_TIMEOUT_SECONDS',
  'GATEWAY_PREVIEW_DEPLOYS_PER_TOKEN',
  'GATEWAY_CALLS_PER_TOKEN',
] as const;

export type OptionName = (typeof OPTION_NAMES)[number];

/** The flag of an option: `DATA_DIR` → `data-dir`. */
export const flagName = (option: string) => option.toLowerCase().replaceAll('_', '-');
