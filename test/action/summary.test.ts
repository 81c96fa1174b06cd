import { describe, expect, it } from 'vitest';
import type { IssuedToken } from '../../action/exchange-client.js';
import { summaryHtml, summaryLines } from '../../action/summary.js';

const token: IssuedToken = {
  accessToken: 'dsts_secret_value',
  tokenType: 'Bearer',
  issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  expiresIn: 600,
  expiresAt: new Date('2030-01-01T00:10:00.000Z'),
  scope: ['deploy:write'],
  site: 'docs',
  context: 'production',
  rule: 'production',
  attempts: 1,
};

describe('the job summary', () => {
  it('shows site, context, scope, expiry and the granting rule', () => {
    const html = summaryHtml(token);
    expect(html).toContain('<th align="left">Site</th><td>docs</td>');
    expect(html).toContain('<code>production</code>');
    expect(html).toContain('<code>deploy:write</code>');
    expect(html).toContain('2030-01-01T00:10:00.000Z (in 10 min)');
    expect(html).toContain('<th align="left">Granted by rule</th><td>production</td>');
  });

  it('never shows the token', () => {
    expect(summaryHtml(token)).not.toContain(token.accessToken);
    expect(summaryLines(token).join('\n')).not.toContain(token.accessToken);
  });

  it('says preview for a preview token', () => {
    expect(summaryHtml({ ...token, context: 'preview', rule: 'previews' })).toContain('preview deploy token issued');
  });

  it('escapes what the service sent', () => {
    const html = summaryHtml({ ...token, rule: '<img src=x onerror=alert(1)>' });
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;img');
  });
});
