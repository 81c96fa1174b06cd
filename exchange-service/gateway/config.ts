/**
 * The deploy gateway's options (DEPLOY_STS_<NAME>, or the matching `serve` flag): where each platform's API is,
 * and the per-request limits. Spread into the service's configuration schema (config.ts).
 */
import { z } from 'zod';
import { isLoopbackHost } from '../oidc/issuers.js';

export const NETLIFY_API_DEFAULT = 'https://api.netlify.com/api/v1';

/** An upstream API base: https, or http on loopback only (tests and local stand-ins). No query, no fragment. */
export function upstreamBaseProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URL, e.g. https://api.netlify.com/api/v1';
  const url = new URL(value);
  if (url.username || url.password) return 'must not hold credentials (the gateway sends the stored credential itself)';
  if (url.search || url.hash) return 'must not have a query or a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'must use https:// (http:// is accepted only for loopback addresses)';
}

const upstream = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = upstreamBaseProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .transform((v) => v.replace(/\/+$/, ''));

/** Zod fields merged into the service's configuration schema; names are the DEPLOY_STS_ suffixes. */
export const GATEWAY_OPTIONS = {
  NETLIFY_API_URL: upstream.default(NETLIFY_API_DEFAULT),
  /** Largest request body (one uploaded file), bytes. */
  GATEWAY_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024 * 1024),
  /** Largest JSON body the gateway parses (deploy create/update with its file digests, and their answers), bytes. */
  GATEWAY_MAX_JSON_BYTES: z.coerce.number().int().min(1024).max(256 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Longest a gateway request may take, upload and answer included, seconds. */
  GATEWAY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(600),
};

export interface GatewayConfig {
  netlifyApiUrl: string;
  maxBodyBytes: number;
  maxJsonBytes: number;
  timeoutMs: number;
}

export function gatewayConfigFrom(c: {
  NETLIFY_API_URL: string;
  GATEWAY_MAX_BODY_BYTES: number;
  GATEWAY_MAX_JSON_BYTES: number;
  GATEWAY_TIMEOUT_SECONDS: number;
}): GatewayConfig {
  return {
    netlifyApiUrl: c.NETLIFY_API_URL,
    maxBodyBytes: c.GATEWAY_MAX_BODY_BYTES,
    maxJsonBytes: c.GATEWAY_MAX_JSON_BYTES,
    timeoutMs: c.GATEWAY_TIMEOUT_SECONDS * 1000,
  };
}

export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = gatewayConfigFrom(z.object(GATEWAY_OPTIONS).parse({}));
