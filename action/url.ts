/**
 * The exchange service's base URL: parsed once, refused when it would send a token in clear text to anything
 * but this machine, and turned into endpoint URLs.
 */
import { isLoopbackHost } from '../shared/wire.js';
import { ActionError } from './errors.js';

export { isLoopbackHost };

/**
 * Parses the `url` input. Accepts `https://` anywhere and `http://` only on loopback; refuses credentials,
 * query strings and fragments (the endpoints are appended as paths). The result has no trailing slash.
 */
export function parseServiceUrl(raw: string): URL {
  const text = raw.trim();
  if (text === '') {
    throw new ActionError('invalid_input', 'Input `url` is required.', 'Set `url` to the base URL of your deploy-sts exchange service, e.g. `https://sts.example.com`.');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ActionError('invalid_input', `Input \`url\` is not a URL: ${JSON.stringify(text)}.`, 'Set `url` to an absolute URL such as `https://sts.example.com`.');
  }
  if (url.protocol === 'http:') {
    if (!isLoopbackHost(url.hostname)) {
      throw new ActionError(
        'insecure_url',
        `Input \`url\` uses http:// for ${url.host}; tokens would cross the network unencrypted.`,
        `Use https://${url.host}${url.pathname === '/' ? '' : url.pathname} (http:// is accepted only for 127.0.0.0/8, ::1 and localhost).`,
      );
    }
  } else if (url.protocol !== 'https:') {
    throw new ActionError('invalid_input', `Input \`url\` must use https://, not ${url.protocol}//.`, 'Set `url` to the https:// address of your exchange service.');
  }
  if (url.username !== '' || url.password !== '') {
    throw new ActionError('invalid_input', 'Input `url` must not contain credentials.', 'Remove the `user:password@` part; the Action authenticates with the job\'s OIDC token.');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ActionError('invalid_input', 'Input `url` must not contain a query string or fragment.', 'Set `url` to the service\'s base URL only, e.g. `https://sts.example.com`.');
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** `base` + `/path`, keeping any path prefix the service is mounted under. */
export function endpoint(base: URL, path: string): string {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  return url.href;
}

/** The base URL as text without a trailing slash, for messages and state. */
export function displayUrl(base: URL): string {
  return base.href.replace(/\/+$/, '');
}
