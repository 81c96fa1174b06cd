/**
 * The Action's inputs (names are public, see action.yml), parsed from a `getInput`-shaped reader into typed
 * values. Every refusal is an ActionError that names the input and the fix.
 */
import { ActionError } from './errors.js';
import { parseServiceUrl } from './url.js';
import { PERMISSION, SITE_SLUG as SITE } from '../shared/wire.js';

export interface ActionInputs {
  /** Base URL of the exchange service, without a trailing slash. */
  url: URL;
  site: string;
  /** Permissions to request; empty = everything the matching rule grants. */
  scope: string[];
  /** Audience for the GitHub OIDC token; undefined = ask the service's metadata. */
  audience: string | undefined;
  /** Environment variable to export the token into; undefined = outputs only. */
  exportEnv: string | undefined;
  /** Revoke the token in the post step. */
  revoke: boolean;
  /** Deploy through the service's gateway for this platform: export the platform CLI's variables. */
  gateway: Gateway | undefined;
}

/** Platforms the service's deploy gateway serves (exchange-service/gateway/<platform>). */
export const GATEWAYS = ['netlify'] as const;
export type Gateway = (typeof GATEWAYS)[number];

export function parseGateway(raw: string): Gateway | undefined {
  const value = raw.trim();
  if (value === '') return undefined;
  if ((GATEWAYS as readonly string[]).includes(value)) return value as Gateway;
  throw new ActionError(
    'invalid_input',
    `Input \`gateway\` names no gateway this Action knows: ${JSON.stringify(value)}.`,
    `Set \`gateway\` to one of ${GATEWAYS.map((g) => `\`${g}\``).join(', ')}, or leave it empty to use the token directly.`,
  );
}

/** Reads one input by its action.yml name, trimmed, '' when unset (like `core.getInput`). */
export type InputReader = (name: string) => string;

// SITE and PERMISSION are the service's own shapes (shared/wire.ts): a typo fails here, not at the service.
/** Upper case, digits and `_`, as environment variables meant for later steps are written. */
const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;
/**
 * Variables a runner, shell, language runtime or tool interprets: a token exported into one of them would
 * break the job, or be read as code, a path or a proxy by some later step.
 */
export const RESERVED_ENV_NAMES: readonly string[] = [
  'PATH', 'HOME', 'CI', 'SHELL', 'TMPDIR', 'ENV', 'BASH_ENV', 'PROMPT_COMMAND', 'PS4', 'SHELLOPTS', 'BASHOPTS', 'IFS',
  'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'RUBYOPT', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY',
];
export const RESERVED_ENV_PREFIXES: readonly string[] = [
  'GITHUB_', 'RUNNER_', 'ACTIONS_', 'INPUT_', 'STATE_', 'NODE_', 'LD_', 'DYLD_', 'GIT_', 'SSH_', 'SSL_CERT_', 'PYTHON', 'PERL5',
];

export function parseSite(raw: string): string {
  const site = raw.trim();
  if (site === '') {
    throw new ActionError('invalid_input', 'Input `site` is required.', 'Set `site` to the slug of the site to deploy, as named in its trust policy (e.g. `docs`).');
  }
  if (!SITE.test(site)) {
    throw new ActionError(
      'invalid_input',
      `Input \`site\` is not a site slug: ${JSON.stringify(site)}.`,
      'Set `site` to the slug as written in the trust policy: lowercase letters, digits and `-`, starting with a letter or digit, at most 63 characters (e.g. `docs`).',
    );
  }
  return site;
}

/** Space- or comma-separated; duplicates dropped, order kept. */
export function parseScope(raw: string): string[] {
  const items = raw.split(/[\s,]+/).filter((s) => s !== '');
  const bad = items.find((s) => !PERMISSION.test(s));
  if (bad !== undefined) {
    throw new ActionError(
      'invalid_input',
      `Input \`scope\` has an invalid permission: ${JSON.stringify(bad)}.`,
      'List permissions as written in the policy, `resource:action` in lowercase, separated by spaces or commas (e.g. `deployments:write`), or leave `scope` empty for everything the rule grants.',
    );
  }
  return [...new Set(items)];
}

/** YAML 1.2 core booleans, like `core.getBooleanInput`; empty = the default. */
export function parseBoolean(name: string, raw: string, fallback: boolean): boolean {
  const value = raw.trim();
  if (value === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new ActionError('invalid_input', `Input \`${name}\` must be true or false, not ${JSON.stringify(value)}.`, `Set \`${name}: true\` or \`${name}: false\`.`);
}

export function parseExportEnv(raw: string): string | undefined {
  const name = raw.trim();
  if (name === '') return undefined;
  const upper = name.toUpperCase();
  if (RESERVED_ENV_NAMES.includes(upper) || RESERVED_ENV_PREFIXES.some((p) => upper.startsWith(p))) {
    throw new ActionError(
      'invalid_input',
      `Input \`export-env\` names a variable the runner, a shell or a tool interprets: ${name}.`,
      `Pick a name of your own such as \`DEPLOY_TOKEN\` (not ${RESERVED_ENV_PREFIXES.map((p) => `${p}*`).join(', ')}, ${RESERVED_ENV_NAMES.join(', ')}).`,
    );
  }
  if (!ENV_NAME.test(name)) {
    throw new ActionError(
      'invalid_input',
      `Input \`export-env\` is not an environment variable name: ${JSON.stringify(name)}.`,
      'Use upper-case letters, digits and `_`, not starting with a digit (e.g. `DEPLOY_TOKEN`), or leave it empty to use the `token` output only.',
    );
  }
  return name;
}

export function parseInputs(read: InputReader): ActionInputs {
  const url = parseServiceUrl(read('url'));
  const site = parseSite(read('site'));
  const scope = parseScope(read('scope'));
  const audienceRaw = read('audience').trim();
  const exportEnv = parseExportEnv(read('export-env'));
  const revoke = parseBoolean('revoke', read('revoke'), true);
  const gateway = parseGateway(read('gateway'));
  return { url, site, scope, audience: audienceRaw === '' ? undefined : audienceRaw, exportEnv, revoke, gateway };
}
