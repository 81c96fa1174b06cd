/**
 * `upstream:` in a site file: the platform account the deploy gateway forwards this site's deploys to. The mapping
 * (slug → platform site id, credential name) is reviewed in git; the credential itself lives in the credential store.
 */
import { z } from 'zod';

/** What a credential name may be: it appears in policy files, CLI arguments, logs and error messages. */
export const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const CREDENTIAL_NAME_RULE = 'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64 characters (e.g. netlify-acme)';

/** A Netlify site id (API id), a UUID. */
export const NETLIFY_SITE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const UPSTREAM_KEYS = ['netlify'] as const;
const NETLIFY_KEYS = ['site_id', 'credential', 'functions_in_previews'] as const;

export const netlifyUpstreamSchema = z
  .strictObject(
    {
      site_id: z
        .string({
          error: (issue) =>
            issue.input === undefined
              ? 'site_id is required: the Netlify site id (Site configuration → Site information → Site ID), e.g. site_id: 3970e0fe-8564-4903-9a55-c5f8de49fb8b'
              : 'site_id must be the Netlify site id as a string, e.g. 3970e0fe-8564-4903-9a55-c5f8de49fb8b',
        })
        .regex(NETLIFY_SITE_ID, 'site_id must be the Netlify site id, a UUID such as 3970e0fe-8564-4903-9a55-c5f8de49fb8b (not the site name)')
        .transform((v) => v.toLowerCase()),
      credential: z
        .string({
          error: (issue) =>
            issue.input === undefined
              ? 'credential is required: the name of a credential in the store (deploy-sts credentials set NAME), e.g. credential: netlify-acme'
              : `credential must be a name: ${CREDENTIAL_NAME_RULE}`,
        })
        .regex(CREDENTIAL_NAME, `credential must be a name: ${CREDENTIAL_NAME_RULE}`),
      functions_in_previews: z
        .boolean({ error: () => 'functions_in_previews must be true or false' })
        .optional(),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? `upstream.netlify allows only ${NETLIFY_KEYS.join(', ')}` : undefined) },
  )
  .describe(
    'Deploys of this site go through the deploy gateway to this Netlify site, with the named stored credential. functions_in_previews (default false): let preview deploys upload functions (they run with the site\'s environment variables).',
  );

export const upstreamSchema = z
  .strictObject(
    { netlify: netlifyUpstreamSchema.optional() },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `upstream allows only ${UPSTREAM_KEYS.join(', ')}`
          : issue.code === 'invalid_type'
            ? 'upstream must be a mapping, e.g. upstream: { netlify: { site_id: ..., credential: ... } }'
            : undefined,
    },
  )
  .describe('The platform the deploy gateway forwards this site\'s deploys to.');

export type UpstreamData = z.output<typeof upstreamSchema>;

/** The loaded form (PolicyFile.upstream). */
export interface NetlifyUpstream {
  siteId: string;
  credential: string;
  functionsInPreviews: boolean;
}
export interface Upstream {
  netlify?: NetlifyUpstream;
}

export function toUpstream(data: UpstreamData): Upstream {
  return data.netlify
    ? { netlify: { siteId: data.netlify.site_id, credential: data.netlify.credential, functionsInPreviews: data.netlify.functions_in_previews ?? false } }
    : {};
}

/** The `aud` of tokens for a site deployed through a platform's gateway: `<public URL>/gateway/<platform>`. */
export function gatewayAudience(publicUrl: string, platform: keyof Upstream): string {
  return `${publicUrl}/gateway/${platform}`;
}
