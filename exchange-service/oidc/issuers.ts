/** The issuer allowlist: https only, except loopback addresses (tests and local demos). */
import { isLoopbackHost } from '../../shared/wire.js';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/** Returns an error message for an issuer URL that may not be trusted, or undefined when it is acceptable. */
export function issuerProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (url.search || url.hash) return `"${value}" must not have a query or fragment`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return `"${value}" must use https:// (http:// is accepted only for loopback addresses)`;
}

/** Issuers compare exactly, but a trailing slash in configuration is forgiven. */
export function normaliseIssuer(value: string): string {
  return value.endsWith('/') ? value.slice(0, -1) : value;
}
