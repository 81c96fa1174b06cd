/**
 * The Netlify platform module for the deploy gateway: mounted at `/gateway/netlify/api/v1/...`, bound through a
 * site file's `upstream.netlify`, planned by the route allowlist (routes.ts) and body rules (bodies.ts), answered in
 * Netlify's error shape `{"code": 403, "message": "..."}` so that the `netlify` CLI prints the message.
 */
import type { PolicySet } from '../../policy/types.js';
import type { GatewayBinding, GatewayPlatform } from '../platform.js';
import { DEPLOY_ID } from './bodies.js';
import { planNetlifyRequest } from './routes.js';

export const NETLIFY = 'netlify';

export function netlifyBinding(policies: PolicySet, site: string): GatewayBinding | undefined {
  const file = policies.forSite(site).find((f) => f.kind === 'site' && f.site === site && f.upstream?.netlify);
  const netlify = file?.upstream?.netlify;
  if (!netlify) return undefined;
  return { site, upstreamSiteId: netlify.siteId, credential: netlify.credential, options: { functionsInPreviews: netlify.functionsInPreviews } };
}

export function netlifyPlatform(upstreamBase: string): GatewayPlatform {
  return {
    name: NETLIFY,
    apiPrefix: '/api/v1',
    upstreamBase,
    binding: netlifyBinding,
    plan: (request, token, binding) =>
      planNetlifyRequest(request, token, { site: binding.site, upstreamSiteId: binding.upstreamSiteId, functionsInPreviews: binding.options.functionsInPreviews === true }),
    authorization: (secret) => `Bearer ${secret}`,
    errorBody: (status, message) => ({ code: status, message }),
    createdDeployId(body) {
      const id = (body as { id?: unknown } | null)?.id;
      return typeof id === 'string' && DEPLOY_ID.test(id) ? id : undefined;
    },
  };
}
