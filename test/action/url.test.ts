import { describe, expect, it } from 'vitest';
import { ActionError } from '../../action/errors.js';
import { displayUrl, endpoint, isLoopbackHost, parseServiceUrl } from '../../action/url.js';

function refused(raw: string): ActionError {
  try {
    parseServiceUrl(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ActionError);
    return error as ActionError;
  }
  throw new Error(`expected ${raw} to be refused`);
}

describe('the service url', () => {
  it('accepts https anywhere', () => {
    expect(displayUrl(parseServiceUrl('https://sts.example.com'))).toBe('https://sts.example.com');
    expect(displayUrl(parseServiceUrl(' https://sts.example.com:8443/base/ '))).toBe('https://sts.example.com:8443/base');
  });

  it('accepts http only on loopback', () => {
    for (const ok of ['http://127.0.0.1:8080', 'http://127.45.6.7', 'http://localhost:3000', 'http://LOCALHOST', 'http://[::1]:9000', 'http://127.1']) {
      expect(parseServiceUrl(ok).protocol).toBe('http:');
    }
  });

  it('refuses http to anything else, and says to use https', () => {
    for (const bad of [
      'http://sts.example.com',
      'http://10.0.0.1',
      'http://128.0.0.1',
      'http://0.0.0.0',
      'http://localhost.example.com',
      'http://127.0.0.1.nip.io',
      'http://[::2]',
      'http://[::ffff:127.0.0.1]',
    ]) {
      const error = refused(bad);
      expect(error.code).toBe('insecure_url');
      expect(error.fix).toMatch(/^Use https:\/\//);
    }
  });

  it('refuses other schemes, credentials, queries and fragments', () => {
    expect(refused('ftp://sts.example.com').code).toBe('invalid_input');
    expect(refused('https://user:pw@sts.example.com').problem).toContain('credentials');
    expect(refused('https://sts.example.com/?x=1').problem).toContain('query');
    expect(refused('https://sts.example.com/#x').problem).toContain('fragment');
    expect(refused('sts.example.com').problem).toContain('not a URL');
  });
});

describe('loopback', () => {
  it('is 127.0.0.0/8, ::1 and localhost only', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.255.255.254')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('126.0.0.1')).toBe(false);
    expect(isLoopbackHost('127.0.0.256')).toBe(false);
    expect(isLoopbackHost('example.com')).toBe(false);
  });
});

describe('endpoints', () => {
  it('are appended to the base path', () => {
    expect(endpoint(parseServiceUrl('https://sts.example.com'), 'token')).toBe('https://sts.example.com/token');
    expect(endpoint(parseServiceUrl('https://sts.example.com/sts/'), 'token')).toBe('https://sts.example.com/sts/token');
    expect(endpoint(parseServiceUrl('https://sts.example.com/sts'), '.well-known/oauth-authorization-server')).toBe(
      'https://sts.example.com/sts/.well-known/oauth-authorization-server',
    );
  });
});
