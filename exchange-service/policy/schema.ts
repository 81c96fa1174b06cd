/**
 * The policy file format, as zod 4 schemas: a site file (`site:`) or an org file (`org:` + `sites:`).
 *
 * Every object is strict (an unknown key is an error: a typo must never widen access), every string is
 * bounded, ids are quoted strings, and the checks that only need one file are here too (rule names unique,
 * the fork-PR invariant), so that `validatePolicyData` alone decides whether a file is acceptable.
 * Cross-file checks (a site defined twice) live in the loader.
 */
import { z } from 'zod';
import { didYouMean } from '../suggest.js';
import { MAX_TOKEN_TTL_SECONDS, RULE_NAME as WIRE_RULE_NAME, SITE_SLUG } from '../../shared/wire.js';
import { CONDITION_CLAIMS, TRUSTED_EVENTS, isTrustedEvent } from '../oidc/claims.js';
import { issuerProblem, normaliseIssuer } from '../oidc/issuers.js';
import { conditionPatternProblem, isConditionClaim } from './condition.js';
import { parseDuration } from './duration.js';
import { MAX_GLOB_LENGTH, isGlob } from './glob.js';
import { PERMISSIONS, permissionProblem } from './permissions.js';
import { upstreamSchema } from './upstream.js';

/** A site slug: the shape the Action checks too (shared/wire.ts). */
export const SLUG = SITE_SLUG;
/** An org file's `sites` entry: a slug, or a glob over slug characters (`app-*`). */
export const SITE_PATTERN = /^[a-z0-9*-]{1,63}$/;
/** A GitHub user or organisation login (Enterprise Managed Users add `_shortcode`). */
export const OWNER = /^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$/;
export const REPOSITORY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,38}\/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$/;
export const NUMERIC_ID = /^[1-9][0-9]{0,19}$/;
export const RULE_NAME = WIRE_RULE_NAME;
export const DURATION_TEXT = /^[0-9]{1,9}[smh]?$/;

/** Seconds. */
export const DEFAULT_MAX_TTL = 600;
export const MAX_TTL_CAP = MAX_TOKEN_TTL_SECONDS;
export const MAX_RULES = 100;
export const MAX_PATTERNS = 64;
export const MAX_SITES = 1000;

const TRUSTED = TRUSTED_EVENTS.join(', ');

/** Titles, descriptions and `$defs` ids for the JSON Schema. Private to this module: no global registry. */
export interface PolicySchemaMeta {
  id?: string;
  title?: string;
  description?: string;
}
export const policySchemaMetadata = z.registry<PolicySchemaMeta>();

function meta<T extends z.ZodType>(schema: T, data: PolicySchemaMeta): T {
  policySchemaMetadata.add(schema, data);
  return schema;
}
const ALWAYS = { when: () => true };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `a string`;
  if (typeof value === 'boolean') return `a boolean (${value})`;
  if (typeof value === 'number') return `a number (${value})`;
  return `a ${typeof value}`;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'a boolean',
};

/**
 * Messages for issues that no schema words itself. Pass as `{ error: policyErrorMap }` when parsing.
 */
export const policyErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describe(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'array') return `must list at least ${issue.minimum}`;
      if (issue.origin === 'string') return 'may not be empty';
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `may list at most ${issue.maximum}`;
      if (issue.origin === 'string') return `may be at most ${issue.maximum} characters long`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
};

/** A required string: says so when absent, and what a wrong type was. */
function requiredString(what: string, hint: string) {
  return z.string({
    error: (issue) =>
      issue.input === undefined ? `${what} is required: ${hint}` : `${what} must be a string (${hint}), got ${describe(issue.input)}`,
  });
}

/** The keys each "allows only" message names, so an unknown key can be answered with the closest allowed one. */
const ALLOWED_KEYS = new Map<string, readonly string[]>();

/** The allowed keys behind an `unrecognized_keys` issue's message (for "did you mean"). */
export function allowedKeysOf(message: string): readonly string[] {
  return ALLOWED_KEYS.get(message) ?? [];
}

function unknownKeys(where: string, allowed: readonly string[]) {
  const message = `${where} allows only ${allowed.join(', ')}`;
  ALLOWED_KEYS.set(message, allowed);
  return (issue: z.core.$ZodRawIssue): string | undefined => (issue.code === 'unrecognized_keys' ? message : undefined);
}

function numericId(key: string, example: string) {
  return z
    .string({
      error: (issue) => {
        if (issue.input === undefined) return `${key} is required: GitHub's numeric id, e.g. ${key}: "${example}"`;
        if (typeof issue.input === 'number' || typeof issue.input === 'bigint') {
          const shown = Number.isSafeInteger(issue.input) ? String(issue.input) : example;
          return `${key} must be a quoted string, e.g. ${key}: "${shown}" (an unquoted number can silently lose digits)`;
        }
        return `${key} must be a quoted string of digits, e.g. ${key}: "${example}", got ${describe(issue.input)}`;
      },
    })
    .regex(NUMERIC_ID, `${key} must be GitHub's numeric id, digits only without leading zeros, e.g. "${example}"`);
}

const repositorySchema = requiredString('repository', 'owner/name, e.g. acme/docs').regex(
  REPOSITORY,
  'repository must be owner/name as on GitHub, e.g. acme/docs',
);
const orgSchema = z
  .string({ error: (issue) => `org must be a GitHub organisation login, e.g. acme, got ${describe(issue.input)}` })
  .regex(OWNER, 'org must be a GitHub organisation login: letters, digits and -, at most 39 characters, e.g. acme');
const tokenAudienceSchema = z.string().min(1).max(512);
export const issuerSchema = meta(
  z
    .string({ error: (issue) => `issuer must be the URL of a trusted OIDC issuer, e.g. https://token.actions.githubusercontent.com, got ${describe(issue.input)}` })
    .max(512)
    .superRefine((value, ctx) => {
      const problem = issuerProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `issuer ${problem}, e.g. https://token.actions.githubusercontent.com` });
    })
    .transform(normaliseIssuer),
  {
    description:
      'The OIDC issuer whose tokens this file accepts: one of the service\'s trusted issuers (DEPLOY_STS_ISSUER). Required when the service trusts several; defaults to the only one otherwise.',
  },
);

const slugSchema = z
  .string({
    error: (issue) =>
      issue.input === undefined
        ? 'site is required: a site file names its site (site: docs); an org file lists them instead (org: acme with sites: [app-*])'
        : `site must be a slug string, got ${describe(issue.input)}`,
  })
  .regex(SLUG, 'site must be a slug: lower-case letters, digits and -, starting with a letter or digit, at most 63 characters');

const sitePatternSchema = z
  .string()
  .regex(SITE_PATTERN, 'a sites entry is a slug (docs) or a glob over slugs (app-*): lower-case letters, digits, - and *')
  .superRefine((pattern, ctx) => {
    if (!SITE_PATTERN.test(pattern)) return;
    if (!isGlob(pattern) && !SLUG.test(pattern)) {
      ctx.addIssue({ code: 'custom', message: 'a sites entry must start with a letter or digit (or be a glob like app-*)' });
    }
    if (/\*{3,}/.test(pattern)) ctx.addIssue({ code: 'custom', message: 'use * in a sites glob, not ***' });
  });

// ---------------------------------------------------------------------------------------------------------
// Conditions

const VALUE_SHAPE = 'a string or a non-empty list of strings';

function patternSchema(claim: string) {
  return z
    .string({ error: (issue) => `a ${claim} pattern must be a string, got ${describe(issue.input)}` })
    .min(1, `a ${claim} pattern may not be empty`)
    .max(MAX_GLOB_LENGTH, `a ${claim} pattern may be at most ${MAX_GLOB_LENGTH} characters long`)
    .superRefine((pattern, ctx) => {
      if (pattern.length === 0 || pattern.length > MAX_GLOB_LENGTH) return;
      const problem = conditionPatternProblem(claim, pattern);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** A single pattern or a list of them (any of), as a list. */
function valuesSchema<T extends z.ZodType<string, unknown>>(claim: string, item: T) {
  return z
    .union([item, z.array(item).min(1, `${claim} needs at least one pattern`).max(MAX_PATTERNS)], {
      error: (issue) => `${claim} must be ${VALUE_SHAPE}, got ${describe(issue.input)}`,
    })
    .transform((value): string[] => (Array.isArray(value) ? value : [value]));
}

function conditionSchema(claim: string) {
  if (claim === 'ref_protected') {
    const item = z.union([patternSchema(claim), z.boolean().transform((b) => String(b))], {
      error: (issue) => `ref_protected must be "true" or "false", got ${describe(issue.input)}`,
    });
    return valuesSchema(claim, item);
  }
  if (claim === 'actor_id') {
    const item = z.union(
      [
        patternSchema(claim),
        z
          .number()
          .int()
          .nonnegative()
          .max(Number.MAX_SAFE_INTEGER)
          .transform((n) => String(n)),
      ],
      { error: (issue) => `actor_id must be a user id such as "1234567" (quote it), got ${describe(issue.input)}` },
    );
    return valuesSchema(claim, item);
  }
  return valuesSchema(claim, patternSchema(claim));
}

const WHEN_KEYS = `${CONDITION_CLAIMS.join(', ')} or repo_property_<name>`;

/** Marks an issue that concerns a key (not its value), so the loader points at the key. */
export const KEY_ISSUE = { at: 'key' } as const;

export const whenSchema = meta(
  z
  .object(Object.fromEntries(CONDITION_CLAIMS.map((claim) => [claim, conditionSchema(claim).optional()])), {
    error: (issue) =>
      issue.code === 'invalid_type'
        ? issue.input === undefined
          ? 'when is required: a mapping of claim: pattern(s), e.g. when: { event_name: push } (when: {} matches every job of the repository)'
          : `when must be a mapping of claim: pattern(s), e.g. when: { event_name: push }, got ${describe(issue.input)}`
        : undefined,
  })
  .catchall(conditionSchema('repo_property'))
  .superRefine((when, ctx) => {
    if (!isRecord(when)) return;
    for (const key of Object.keys(when)) {
      if (isConditionClaim(key)) continue;
      const message = key.startsWith('repo_property_')
        ? `${JSON.stringify(key)} is not a valid custom property condition: repo_property_ must be followed by the property name (letters, digits, _, -, $, #)`
        : `unknown condition ${JSON.stringify(key)}${didYouMean(key, CONDITION_CLAIMS)}: a when key is one of ${WHEN_KEYS}`;
      ctx.addIssue({ code: 'custom', path: [key], message, params: KEY_ISSUE });
    }
  }, ALWAYS),
  { id: 'conditions', description: 'Every key must match; a list means any of. Values are exact strings or globs (* within a path segment, ** across).' },
);

// ---------------------------------------------------------------------------------------------------------
// Rules

export const maxTtlSchema = meta(
  z
  .union([z.string().regex(DURATION_TEXT), z.number().int().min(1).max(MAX_TTL_CAP)], {
    error: (issue) => `max_ttl must be a duration like 90s, 10m or 1h, got ${describe(issue.input)}`,
  })
  .transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: `max_ttl: ${parsed.message}` });
      return z.NEVER;
    }
    if (parsed.seconds < 1 || parsed.seconds > MAX_TTL_CAP) {
      ctx.addIssue({ code: 'custom', message: `max_ttl must be between 1s and 1h (the hard cap), got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return parsed.seconds;
  }),
  { description: 'How long minted tokens may live: 90s, 10m, 1h or a number of seconds. Default 10m, at most 1h.' },
);

const permissionSchema = z.enum(PERMISSIONS as [string, ...string[]], {
  error: (issue) => permissionProblem(issue.input) ?? 'not a known permission',
});

const RULE_KEYS = ['name', 'context', 'permissions', 'max_ttl', 'when'] as const;

function untrustedEventMessage(pattern: string): string {
  const why = `only trusted events (${TRUSTED}) may receive production, because other events, pull_request_target and workflow_run in particular, run with fork code and must only get preview`;
  const fix = 'Fix: restrict event_name to trusted events, or give this rule context: preview';
  if (isGlob(pattern)) {
    return `a production rule must name its events literally, but ${JSON.stringify(pattern)} is a glob that could match untrusted events: ${why}. ${fix}`;
  }
  return `a production rule may not match event ${JSON.stringify(pattern)}: ${why}. ${fix}`;
}

/** The fork-PR invariant at load: production only for literally named trusted events. */
function checkForkInvariant(rule: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(rule) || rule.context !== 'production') return;
  const when = isRecord(rule.when) ? rule.when : undefined;
  const events = when?.event_name;
  if (events === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['context'],
      message:
        `a production rule needs an event_name condition listing only trusted events (${TRUSTED}): ` +
        'without one it would grant production to pull_request_target and workflow_run too, which run with fork code and must only get preview. ' +
        'Fix: add e.g. event_name: [push, workflow_dispatch] to when, or give this rule context: preview',
    });
    return;
  }
  const list = Array.isArray(events) ? events : [events];
  list.forEach((pattern, index) => {
    if (typeof pattern !== 'string') return;
    if (isGlob(pattern) || !isTrustedEvent(pattern)) {
      const path = Array.isArray(events) && list.length > 1 ? ['when', 'event_name', index] : ['when', 'event_name'];
      ctx.addIssue({ code: 'custom', path, message: untrustedEventMessage(pattern) });
    }
  });
}

export const ruleSchema = meta(
  z
  .strictObject(
    {
      name: requiredString('name', 'a short rule name, e.g. production').regex(
        RULE_NAME,
        'name must be letters, digits, _, . and -, at most 64 characters',
      ),
      context: z.enum(['production', 'preview'], {
        error: (issue) =>
          issue.input === undefined ? 'context is required: production or preview' : `context must be production or preview, got ${JSON.stringify(issue.input) ?? describe(issue.input)}`,
      }),
      permissions: z
        .array(permissionSchema, {
          error: (issue) =>
            issue.input === undefined ? 'permissions is required, e.g. permissions: [deployments:write]' : undefined,
        })
        .min(1, 'permissions must list at least one permission, e.g. [deployments:write]')
        .max(32),
      max_ttl: maxTtlSchema.optional(),
      when: whenSchema,
    },
    { error: unknownKeys('a rule', RULE_KEYS) },
  )
  .superRefine(checkForkInvariant, ALWAYS)
  .transform(({ max_ttl, ...rule }) => ({ ...rule, max_ttl: max_ttl ?? DEFAULT_MAX_TTL })),
  { id: 'rule', description: 'Grants context and permissions to a token whose claims match every when condition.' },
);

const rulesSchema = z
  .array(ruleSchema, {
    error: (issue) => (issue.input === undefined ? 'rules is required: a list of rules' : undefined),
  })
  .min(1, 'rules must list at least one rule')
  .max(MAX_RULES)
  .superRefine((rules, ctx) => {
    if (!Array.isArray(rules)) return;
    const seen = new Map<string, number>();
    rules.forEach((rule: unknown, index) => {
      const name = isRecord(rule) ? rule.name : undefined;
      if (typeof name !== 'string') return;
      const first = seen.get(name);
      if (first === undefined) seen.set(name, index);
      else {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `rule name ${JSON.stringify(name)} is already used by rules[${first}]: rule names must be unique within a file`,
        });
      }
    });
  }, ALWAYS);

// ---------------------------------------------------------------------------------------------------------
// Files

const SITE_FILE_KEYS = ['site', 'org', 'issuer', 'repository', 'repository_id', 'repository_owner_id', 'token_audience', 'upstream', 'rules'] as const;
const ORG_FILE_KEYS = ['org', 'sites', 'issuer', 'repository', 'repository_id', 'repository_owner_id', 'token_audience', 'rules'] as const;

const binding = {
  issuer: issuerSchema.optional(),
  repository: repositorySchema,
  repository_id: numericId('repository_id', '892043217'),
  repository_owner_id: numericId('repository_owner_id', '51204').optional(),
  token_audience: tokenAudienceSchema.optional(),
  rules: rulesSchema,
};

export const siteFileSchema = meta(
  z
  .strictObject(
    {
      site: slugSchema,
      org: orgSchema.optional(),
      ...binding,
      upstream: upstreamSchema.optional(),
    },
    { error: unknownKeys('a site file', SITE_FILE_KEYS) },
  )
  .superRefine((file, ctx) => {
    // A site file's `org:` is what lets its org's files govern the site and what the token says: the org must own
    // the repository the file binds, as for org files.
    if (file.org !== undefined) {
      const owner = file.repository.split('/')[0] ?? '';
      if (owner.toLowerCase() !== file.org.toLowerCase()) {
        ctx.addIssue({
          code: 'custom',
          path: ['repository'],
          message: `a site file's repository must belong to its org: ${JSON.stringify(file.repository)} is not in org ${JSON.stringify(file.org)}. Fix: bind a repository of ${file.org}, or drop org: (the site then belongs to no org file)`,
        });
      }
    }
    // A gateway site's tokens carry the gateway's audience; a second audience would be ambiguous.
    if (file.upstream?.netlify && file.token_audience !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['token_audience'],
        params: KEY_ISSUE,
        message:
          'token_audience cannot be combined with upstream.netlify: tokens for a site deployed through the Netlify gateway carry the audience <public URL>/gateway/netlify. Fix: remove token_audience',
      });
    }
  }),
  { id: 'siteFile', title: 'deploy-sts site policy', description: 'Rules for one site, bound to one repository.' },
);

export const orgFileSchema = meta(
  z
  .strictObject(
    {
      org: orgSchema,
      sites: z
        .array(sitePatternSchema, {
          error: (issue) => (issue.input === undefined ? 'sites is required: a list of slugs or globs, e.g. [app-*]' : undefined),
        })
        .min(1, 'sites must list at least one slug or glob')
        .max(MAX_SITES),
      ...binding,
    },
    { error: unknownKeys('an org file', ORG_FILE_KEYS) },
  )
  .superRefine((file, ctx) => {
    // `org:` is what lets an org file govern a site: it must be the org that owns the repository it binds.
    const owner = file.repository.split('/')[0] ?? '';
    if (owner.toLowerCase() !== file.org.toLowerCase()) {
      ctx.addIssue({
        code: 'custom',
        path: ['repository'],
        message: `an org file's repository must belong to its org: ${JSON.stringify(file.repository)} is not in org ${JSON.stringify(file.org)}. Fix: bind a repository of ${file.org}, or move these rules to a site file`,
      });
    }
  }),
  { id: 'orgFile', title: 'deploy-sts org policy', description: 'Rules for many sites (slugs or globs), bound to one repository.' },
);

/** Either kind of file (for the JSON Schema; validation dispatches on `site` / `sites` for precise errors). */
export const policyFileSchema = meta(z.union([siteFileSchema, orgFileSchema]), {
  title: 'deploy-sts policy file',
  description: 'A deploy-sts trust policy: a site file (site:) or an org file (org: and sites:).',
});

export type SiteFileData = z.output<typeof siteFileSchema>;
export type OrgFileData = z.output<typeof orgFileSchema>;
export type RuleData = z.output<typeof ruleSchema>;
export type PolicyData = ({ kind: 'site' } & SiteFileData) | ({ kind: 'org' } & OrgFileData);

export type PolicyValidation =
  | { success: true; data: PolicyData }
  | { success: false; issues: z.core.$ZodIssue[] };

/** Validate a parsed YAML document: a site file when it has `site:`, an org file when it has `sites:`. */
export function validatePolicyData(input: unknown): PolicyValidation {
  if (!isRecord(input)) {
    return {
      success: false,
      issues: [
        {
          code: 'custom',
          path: [],
          message: `a policy file must be a mapping with site: (a site file) or org: and sites: (an org file), got ${describe(input)}`,
          input,
        },
      ],
    };
  }
  if ('site' in input && 'sites' in input) {
    return {
      success: false,
      issues: [
        {
          code: 'custom',
          path: ['sites'],
          message: 'a file is either a site file (site:) or an org file (org: and sites:), not both',
          params: KEY_ISSUE,
          input,
        },
      ],
    };
  }
  if ('sites' in input) {
    const result = orgFileSchema.safeParse(input, { error: policyErrorMap });
    return result.success ? { success: true, data: { kind: 'org', ...result.data } } : { success: false, issues: result.error.issues };
  }
  const result = siteFileSchema.safeParse(input, { error: policyErrorMap });
  return result.success ? { success: true, data: { kind: 'site', ...result.data } } : { success: false, issues: result.error.issues };
}

