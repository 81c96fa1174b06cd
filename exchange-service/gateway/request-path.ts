/**
 * The request target below a platform's API prefix, checked before anything else reads it: printable ASCII only,
 * no empty, `.` or `..` segments (raw or percent-decoded), no encoded `/`, `\` or NUL, so that the path sent
 * upstream is exactly the one the platform module classified and can never climb out of the API base.
 */

export type PathCheck = { ok: true; path: string; query: URLSearchParams } | { ok: false; message: string };

const PRINTABLE = /^[\x21-\x7e]*$/;
const ENCODED_SEPARATOR = /%(2f|5c|00)/i;
const MAX_TARGET = 8192;

/** `target` is the request URL (path and query) after the mount point and API prefix have been removed. */
export function checkRequestPath(target: string): PathCheck {
  if (target.length > MAX_TARGET) return { ok: false, message: `the request URL is longer than ${MAX_TARGET} characters` };
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  if (!path.startsWith('/') || path === '/') return { ok: false, message: 'the request names no API path' };
  if (!PRINTABLE.test(path) || path.includes('\\') || path.includes('#')) return { ok: false, message: 'the request path holds characters an API path never does' };
  if (ENCODED_SEPARATOR.test(path)) return { ok: false, message: 'the request path holds an encoded /, \\ or NUL' };
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return { ok: false, message: 'the request path holds a malformed percent-encoding' };
    }
    if (segment === '' || decoded === '.' || decoded === '..') return { ok: false, message: 'the request path has an empty, . or .. segment' };
  }
  return { ok: true, path, query: new URLSearchParams(query) };
}
