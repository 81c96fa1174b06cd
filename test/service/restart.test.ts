import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.js';
import { exchangeToken, postForm, startService, tempDir } from '../helpers/service.js';

let issuer: TestIssuer;
const dataDir = tempDir();

beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => {
  await issuer.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a restart on the same data directory', () => {
  it('keeps revocations, the replay cache, the audit log and the signing keys', async () => {
    const first = await startService({ issuer: issuer.url, dataDir });
    const subject = await issuer.token();
    const granted = await exchangeToken(first.url, subject);
    expect(granted.status).toBe(200);
    const revokedToken = String(granted.body.access_token);
    const keptToken = String((await exchangeToken(first.url, await issuer.token())).body.access_token);
    expect((await postForm(`${first.url}/revoke`, { token: revokedToken })).status).toBe(200);
    const auditBefore = await first.service.storage.listAudit({ limit: 100 });
    await first.stop();

    const second = await startService({ issuer: issuer.url, dataDir });
    try {
      // The issuer of minted tokens is the service URL; a new port means a new issuer, so compare by jti and keys.
      const replay = await exchangeToken(second.url, subject);
      expect(replay.status).toBe(400);
      expect(String(replay.body.error_description)).toContain('already exchanged');

      const auditAfter = await second.service.storage.listAudit({ limit: 100 });
      for (const row of auditBefore) expect(auditAfter.find((r) => r.id === row.id)).toEqual(row);

      const revokedJti = JSON.parse(Buffer.from(revokedToken.split('.')[1]!, 'base64url').toString()).jti as string;
      const keptJti = JSON.parse(Buffer.from(keptToken.split('.')[1]!, 'base64url').toString()).jti as string;
      expect(await second.service.storage.isRevoked(revokedJti)).toBe(true);
      expect(await second.service.storage.isRevoked(keptJti)).toBe(false);

      const kid = JSON.parse(Buffer.from(keptToken.split('.')[0]!, 'base64url').toString()).kid as string;
      const jwks = (await (await fetch(`${second.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((k) => k.kid)).toContain(kid);
    } finally {
      await second.stop();
    }
  });
});
