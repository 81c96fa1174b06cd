/**
 * The wire contract shared by the Action (`action/`) and the exchange service (`exchange-service/`): RFC 8693 grant
 * and token types, the shapes of a site slug and a permission, and which hosts are loopback (where http:// is
 * allowed). Dependency-free on purpose: the Action's bundle inlines it, and both sides agree by construction.
 */

/** RFC 8693 §2.1: the grant type of a token exchange. */
export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3: token type identifiers. A GitHub OIDC token is an id_token (a JWT is accepted too). */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A site slug: lowercase letters, digits and `-`, starting with a letter or digit, at most 63 characters. */
export const SITE_SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A permission: `resource:action` in lowercase (e.g. `deployments:write`). */
export const PERMISSION = /^[a-z]+:[a-z]+$/;

/** A policy rule's name, as the token response's `rule` carries it. */
export const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The longest a deploy token lives (a rule's `max_ttl` hard cap): `expires_in`, and `exp - iat` of every token we mint. */
export const MAX_TOKEN_TTL_SECONDS = 3600;

/** True for names that can only reach this machine: `localhost`, 127.0.0.0/8 and `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost') return true;
  if (host === '[::1]' || host === '::1') return true;
  // WHATWG URL parsing has already normalised IPv4 forms such as `127.1` or `2130706433` to dotted quads.
  const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!quad) return false;
  const octets = quad.slice(1).map(Number);
  return octets.every((o) => o <= 255) && octets[0] === 127;
}
