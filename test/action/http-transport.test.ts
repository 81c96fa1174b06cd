import { describe, expect, it } from 'vitest';
import { classifyNetworkError, unbracketHost } from '../../action/http-transport.js';

const timeouts = { connectMs: 10_000, totalMs: 30_000 };

/** An error shaped like the ones Node's net and tls modules throw. */
function nodeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('what a failed connection is', () => {
  it('is decided by the code: a connection dropped mid-handshake is a network failure, retried', () => {
    const error = classifyNetworkError(nodeError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), timeouts, false);
    expect(error).toMatchObject({ kind: 'unreachable', retryable: true, detail: 'connection reset by the other end during the TLS handshake (ECONNRESET)' });
  });

  it('is a network failure for every connection-level code, whatever the message', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']) {
      expect(classifyNetworkError(nodeError(code, 'SSL TLS something'), timeouts, false), code).toMatchObject({ kind: 'unreachable', retryable: true });
    }
    expect(classifyNetworkError(nodeError('ETIMEDOUT', 'connect ETIMEDOUT'), timeouts, false)).toMatchObject({ kind: 'timeout', retryable: true });
  });

  it('is a TLS failure, not retried, for certificate and protocol errors', () => {
    for (const code of ['CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'SELF_SIGNED_CERT_IN_CHAIN']) {
      expect(classifyNetworkError(nodeError(code, 'x'), timeouts, false), code).toMatchObject({ kind: 'tls_failure', retryable: false });
    }
    const wrongVersion = nodeError('EPROTO', 'write EPROTO 40ED:error:0A00010B:SSL routines:tls_validate_record_header:wrong version number:../ssl.c:77:\n');
    expect(classifyNetworkError(wrongVersion, timeouts, false)).toMatchObject({
      kind: 'tls_failure',
      retryable: false,
      detail: 'the server did not answer in TLS (wrong version number): is this an http:// port? (EPROTO)',
    });
  });

  it('is a network failure for EPROTO without OpenSSL in it, and for unknown codes', () => {
    expect(classifyNetworkError(nodeError('EPROTO', 'protocol error'), timeouts, false)).toMatchObject({ kind: 'unreachable', retryable: true });
    expect(classifyNetworkError(nodeError('EWHATEVER', 'odd\nsecond line'), timeouts, false)).toMatchObject({ kind: 'unreachable', detail: 'odd (EWHATEVER)' });
  });

  it('is a timeout when the total timeout fired, whatever was thrown', () => {
    expect(classifyNetworkError(nodeError('ECONNRESET', 'aborted'), timeouts, true)).toMatchObject({ kind: 'timeout', detail: 'no complete answer within the total timeout of 30s' });
  });
});

describe('IPv6 literals', () => {
  it('lose their brackets for a direct connection', () => {
    expect(unbracketHost('[::1]')).toBe('::1');
    expect(unbracketHost('[2001:db8::1]')).toBe('2001:db8::1');
    expect(unbracketHost('127.0.0.1')).toBe('127.0.0.1');
    expect(unbracketHost('sts.example.com')).toBe('sts.example.com');
  });
});
