/**
 * The request line (request-log.ts) is written without pino's generic path; operators and tests parse it, so it must
 * be byte for byte the line pino writes for the service's logger (service.ts createLogger) — the way it was written
 * before: `logger.child({}, { redact: [] })[level](fields, 'request')`. Compared on the fields the HTTP app logs,
 * on any values (escapes, lone surrogates, long strings, odd numbers, nested objects), at each level.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../exchange-service/config.js';
import { isoTime, requestLineWriter, type RequestLevel } from '../../exchange-service/request-log.js';
import { createLogger } from '../../exchange-service/service.js';
import { exchangeToken, useIssuerAndService } from '../helpers/service.js';

const ISO_TIME = /"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"/;

/** The lines written by the request-line writer and by pino's path, for the same calls. */
function bothWays(level: Config['logLevel'], calls: [RequestLevel, Record<string, unknown>][]): { direct: string[]; pino: string[] } {
  const direct: string[] = [];
  const viaPino: string[] = [];
  // The writer writes into its logger's destination; lines it leaves to pino arrive there too.
  const destination = { write: (line: string) => void direct.push(line) };
  const write = requestLineWriter(createLogger(level, destination), destination);
  const plain = createLogger(level, { write: (line) => viaPino.push(line) }).child({}, { redact: [] });
  for (const [lineLevel, fields] of calls) {
    write(lineLevel, fields);
    plain[lineLevel](fields, 'request');
  }
  return { direct, pino: viaPino };
}

/** The time of each line checked as ISO 8601 and within a second of the other's, then left out of the comparison. */
function withoutTime(direct: string[], viaPino: string[]): [string[], string[]] {
  const strip = (line: string, other: string) => {
    const a = ISO_TIME.exec(line)?.[1];
    const b = ISO_TIME.exec(other)?.[1];
    expect(a, line).toBeDefined();
    expect(Math.abs(Date.parse(a!) - Date.parse(b!))).toBeLessThan(1000);
    return line.replace(ISO_TIME, '"time":"T"');
  };
  return [direct.map((line, i) => strip(line, viaPino[i]!)), viaPino.map((line, i) => strip(line, direct[i]!))];
}

const GRANT = {
  request_id: '6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b', method: 'POST', path: '/token', status: 200, ms: 3.4, client_ip: '127.0.0.1',
  result: 'granted', reason: 'granted', site: 'docs', rule: 'production', context: 'production', repository: 'acme/docs',
  repository_id: '123456', event_name: 'push', ref: 'refs/heads/main', subject_jti: 'j-1', token_jti: 't-1',
};

const anyValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }), // any code point: control characters, quotes, astral characters
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)), maxLength: 20 }), // lone surrogates too
  fc.string({ unit: 'grapheme', minLength: 90, maxLength: 130 }), // pino escapes strings over 100 characters another way
  fc.constantFrom('a"b', 'a\\b', 'a\\udead', 'é', '😀', '\u2028', '\u007f', ''),
  fc.double(),
  fc.integer(),
  fc.constantFrom(null, undefined, true, false, NaN, Infinity, -Infinity, -0),
  fc.constant({ nested: 'object', b: 1, a: 2 }),
  fc.constant(new Date(0)),
  fc.constant(() => 'a function'),
  fc.constant(12n),
);

describe('the request line', () => {
  it('is the line pino writes for the fields the HTTP app logs, whatever their values', () => {
    fc.assert(
      fc.property(fc.constantFrom<RequestLevel>('info', 'error'), fc.dictionary(fc.constantFrom(...Object.keys(GRANT)), anyValue), (level, values) => {
        const fields = { ...GRANT, ...values };
        const { direct, pino } = bothWays('info', [[level, fields]]);
        expect(direct).toHaveLength(1);
        const [a, b] = withoutTime(direct, pino);
        expect(a).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps the keys in order: level, time, the fields as given, msg', () => {
    const { direct } = bothWays('info', [['info', GRANT], ['error', { request_id: 'r', method: 'GET', path: 'other', status: 503, ms: 0.1, client_ip: undefined }]]);
    expect(direct.every((line) => line.endsWith('}\n') && line.indexOf('\n') === line.length - 1)).toBe(true);
    const [grant, failure] = direct.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(Object.keys(grant!)).toEqual(['level', 'time', ...Object.keys(GRANT), 'msg']);
    expect(grant).toMatchObject({ level: 30, ...GRANT, msg: 'request' });
    expect(failure).toEqual({ level: 50, time: expect.stringMatching(/Z$/), request_id: 'r', method: 'GET', path: 'other', status: 503, ms: 0.1, msg: 'request' });
  });

  it('keeps the logger level: nothing at silent, error lines only at warn and error', () => {
    const calls: [RequestLevel, Record<string, unknown>][] = [['info', GRANT], ['error', { ...GRANT, status: 500 }]];
    for (const level of ['debug', 'info', 'warn', 'error', 'silent'] as const) {
      const { direct, pino } = bothWays(level, calls);
      expect(direct.length, level).toBe(pino.length);
      expect(direct.length, level).toBe(level === 'silent' ? 0 : level === 'warn' || level === 'error' ? 1 : 2);
      const [a, b] = withoutTime(direct, pino);
      expect(a).toEqual(b);
    }
  });
});

describe('the time of the request line', () => {
  it('is the ISO 8601 time pino writes, at any millisecond, in any order', () => {
    const time = isoTime();
    const instants = [0, 1, 999, 1000, -1, -999, -1000, 951_868_799_999, 951_868_800_000, 253_402_300_799_999, 253_402_300_800_000];
    for (const ms of instants) expect(time(ms), String(ms)).toBe(new Date(ms).toISOString());
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -8.64e15, max: 8.64e15 }), { maxLength: 20 }), fc.integer({ min: 0, max: 2_000_000_000_000 }), (jumps, base) => {
        for (const ms of [base, ...jumps.map((j) => base + (j % 5000)), ...jumps]) expect(time(ms)).toBe(new Date(ms).toISOString());
      }),
    );
  });
});

describe('the request line of a running service', () => {
  const running = useIssuerAndService();

  it('has the fields of a grant and of a denial, in order', async () => {
    expect((await exchangeToken(running.svc.url, await running.issuer.token())).status).toBe(200);
    expect((await exchangeToken(running.svc.url, await running.issuer.token({ ref: 'refs/heads/feature' }))).status).toBe(400);
    const lines = running.svc.logs.filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const decision = ['result', 'reason', 'site', 'rule', 'context', 'repository', 'repository_id', 'event_name', 'ref', 'subject_jti', 'token_jti'];
    const start = ['level', 'time', 'request_id', 'method', 'path', 'status', 'ms', 'client_ip'];
    expect(lines.map((line) => Object.keys(line))).toEqual([
      [...start, ...decision, 'msg'],
      [...start, ...decision, 'msg'],
    ]);
    expect(lines[0]).toMatchObject({ level: 30, path: '/token', status: 200, result: 'granted', msg: 'request' });
    expect(lines[1]).toMatchObject({ level: 30, path: '/token', status: 400, result: 'denied', rule: null, token_jti: null, msg: 'request' });
  });
});
