/**
 * The one log line of each HTTP request, in exactly the form pino writes it for the service's logger (service.ts
 * `createLogger`): `{"level":30,"time":"<ISO 8601>",<the fields, in order>,"msg":"request"}` and a newline.
 *
 * Written here rather than through pino's generic path, which cost ~3.6 µs CPU and ~4.8 KB allocated per line (its
 * message formatting, then one escape pass and several concatenated strings per key and per value): the line's
 * fields are a flat object of strings, numbers and nulls, which one native `JSON.stringify` writes as one flat string,
 * escaping exactly as pino does (see `plainValues`). Anything else in the fields goes through pino as before. The
 * request line's fields are fixed and never a token (request id, route, decision): no redaction pass, as before.
 */
import type { Logger } from 'pino';

export type RequestLevel = 'info' | 'error';
export type RequestLog = (level: RequestLevel, fields: Record<string, unknown>) => void;
/** Where a logger writes its lines (pino's destination). */
export interface LineDestination {
  write(line: string): void;
}

/** pino's start of a line at each level (its default level formatter: the level's number). */
const LINE_START: Record<RequestLevel, string> = { info: '{"level":30,"time":"', error: '{"level":50,"time":"' };
const LINE_END = ',"msg":"request"}\n';

/**
 * True when JSON.stringify writes these fields' values as pino would: strings, numbers (both write `null` for NaN
 * and ±Infinity), booleans, null and undefined (both leave the key out). Objects, functions, bigints and symbols are
 * left to pino (its own stringifier: circular references, bigints, toJSON; it reads an object with a
 * `setHeader` function as a response). Both read own keys in the same order.
 * A type test per value (~60 ns for the request line's 17): a String.isWellFormed per string cost twice that, so
 * lone surrogates are found in the output instead (see LONE_SURROGATE).
 */
function plainValues(fields: Record<string, unknown>): boolean {
  for (const key in fields) {
    const value = fields[key];
    if (typeof value === 'object' ? value !== null : typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean' && value !== undefined) return false;
  }
  return true;
}

/**
 * JSON.stringify writes a lone surrogate (in a key or a value) as the escape `\udxxx`; pino (Node < 25) writes the
 * character as it is. A line whose JSON holds `\ud` goes through pino (a string with a backslash followed by "ud"
 * does too: rare, and pino writes it the same).
 */
const LONE_SURROGATE = '\\ud';

/**
 * The request line of `logger`, written to `destination`, the stream `logger` writes to. `logger` must be one of
 * createLogger's (ISO time, no base, mixin, hooks or formatters): the line copies that format. Its level applies as
 * a child's made now would apply it; other lines (see plainValues, LONE_SURROGATE) go through pino itself.
 */
export function requestLineWriter(logger: Logger, destination: LineDestination): RequestLog {
  const generic = logger.child({}, { redact: [] });
  const time = isoTime();
  return (level, fields) => {
    if (!generic.isLevelEnabled(level)) return;
    const json = plainValues(fields) ? JSON.stringify(fields) : '';
    if (json.length <= 2 || json.includes(LONE_SURROGATE)) return generic[level](fields, 'request');
    destination.write(LINE_START[level] + time(Date.now()) + '",' + json.slice(1, -1) + LINE_END);
  };
}

/** The three digits of each millisecond, 000 to 999. */
const MILLISECONDS = Array.from({ length: 1000 }, (_, ms) => String(ms).padStart(3, '0'));

/**
 * `new Date(ms).toISOString()`, as pino's isoTime writes it, from one Date per second: the part up to the seconds'
 * dot is kept, and the milliseconds appended (a Date and its ISO string cost ~0.5 µs; lines a millisecond apart
 * rarely share one).
 */
export function isoTime(): (ms: number) => string {
  let second = Number.NaN;
  let upToDot = '';
  let last = Number.NaN;
  let lastIso = '';
  return (ms) => {
    if (ms === last) return lastIso; // the lines of a batch answered in one turn mostly share their millisecond
    const s = Math.floor(ms / 1000);
    if (s !== second) {
      const iso = new Date(s * 1000).toISOString(); // …:SS.000Z
      second = s;
      upToDot = iso.slice(0, -4);
    }
    last = ms;
    lastIso = upToDot + MILLISECONDS[ms - s * 1000]! + 'Z';
    return lastIso;
  };
}
