/**
 * `gateway: netlify`: the variables a platform's own CLI reads, pointed at the service's deploy gateway, so that
 * an unchanged `netlify deploy` step deploys with the (masked) deploy token and never with a platform token.
 */
import type { Gateway } from './inputs.js';
import { displayUrl } from './url.js';

export interface GatewayExports {
  /** The API base URL the platform CLI should use (the `api-url` output). */
  apiUrl: string;
  /** Variables exported for later steps: name → value. The token's variable holds the deploy token. */
  variables: { name: string; value: string; secret: boolean }[];
}

export function gatewayExports(gateway: Gateway, service: URL, token: string): GatewayExports {
  const apiUrl = `${displayUrl(service)}/gateway/${gateway}/api/v1`;
  return {
    apiUrl,
    variables: [
      { name: 'NETLIFY_AUTH_TOKEN', value: token, secret: true },
      { name: 'NETLIFY_API_URL', value: apiUrl, secret: false },
    ],
  };
}
