/**
 * Fail closed: when the issuer's keys, the replay cache, the audit log or the storage as a whole are unavailable,
 * the answer is 503 temporarily_unavailable and never a token. Failures are real: the issuer's JWKS endpoint errors,
 * hangs or sends too much; the SQLite file refuses writes (a trigger that raises, as a full disk would); the storage
 * is closed under the running service.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf } from '../helpers/forge.js';
import { exchangeToken } from '../helpers/service.js';
import { auditAfter, expectGranted, expectRefused, lastAuditId, startSuite, type Suite } from './support.js';

const unavailable = (reason: string) => ({ status: 503, error: 'temporarily_unavailable', reason, description: /unavailable; no token was issued/ });

describe('the issuer\'s keys are unavailable', () => {
  /** A fresh issuer and service per case: the service has no cached keys, and no cooldown from an earlier failure. */
  async function withFreshService(behaviour: 'error' | 'huge' | 'hang', run: (suite: Suite) => Promise<void>): Promise<void> {
    const suite = await startSuite();
    try {
      suite.issuer.setJwksBehaviour(behaviour);
      await run(suite);
    } finally {
      await suite.stop();
    }
  }
  const exchange = (suite: Suite) => async () => exchangeToken(suite.svc.url, await suite.issuer.token());
  const jwksHits = (suite: Suite) => suite.issuer.requests['/.well-known/jwks'] ?? 0;

  it('answers 503 when the JWKS endpoint errors, and keeps answering 503 without hammering it', async () => {
    await withFreshService('error', async (suite) => {
      await expectRefused(suite.svc, exchange(suite), unavailable('jwks_unavailable'));
      expect(jwksHits(suite)).toBe(1);
      for (let i = 0; i < 20; i++) await expectRefused(suite.svc, exchange(suite), unavailable('jwks_unavailable'));
      expect(jwksHits(suite)).toBe(1); // within the cooldown: no fetch storm against a failing issuer
    });
  });

  it('answers 503 when the JWKS is larger than the size cap', async () => {
    await withFreshService('huge', async (suite) => {
      await expectRefused(suite.svc, exchange(suite), unavailable('jwks_unavailable'));
      expect(jwksHits(suite)).toBe(1);
    });
  });

  it('answers 503 when the JWKS endpoint hangs, once the fetch timeout (5 s) passes', async () => {
    await withFreshService('hang', async (suite) => {
      const { answer } = await expectRefused(suite.svc, exchange(suite), unavailable('jwks_unavailable'));
      expect(String(answer.body.error_description)).toMatch(/timeout|aborted/i);
    });
  }, 15_000);
});

describe('the SQLite file refuses writes', () => {
  let suite: Suite;
  let db: DatabaseSync;
  beforeAll(async () => {
    suite = await startSuite();
    db = new DatabaseSync(join(suite.svc.dataDir, 'deploy-sts.sqlite'));
  });
  afterAll(async () => {
    db?.close();
    await suite?.stop();
  });
  const refuse = (name: string, table: string, when = '') =>
    db.exec(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} ${when} BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
  const allow = (name: string) => db.exec(`DROP TRIGGER ${name}`);
  const exchange = (token: string) => () => exchangeToken(suite.svc.url, token);

  it('replay cache: 503, no token, and the failure is audited', async () => {
    refuse('replay_full', 'replay_log');
    try {
      const token = await suite.issuer.token();
      const { audit } = await expectRefused(suite.svc, exchange(token), unavailable('storage_unavailable'));
      expect(audit.subjectJti).toBe(claimsOf(token).jti);
    } finally {
      allow('replay_full');
    }
  });

  it('audit log, for a grant: 503 and no token — the grant is not returned when it cannot be recorded', async () => {
    refuse('audit_full', 'audit', "WHEN NEW.result = 'granted'");
    try {
      const tokensBefore = (await suite.svc.service.storage.listTokens({ now: 0, limit: 1000 })).length;
      const before = await lastAuditId(suite.svc);
      const res = await exchangeToken(suite.svc.url, await suite.issuer.token());
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('temporarily_unavailable');
      expect(res.body).not.toHaveProperty('access_token');
      expect(String(res.body.error_description)).toMatch(/audit log is unavailable/);
      expect(await auditAfter(suite.svc, before)).toEqual([]);
      expect((await suite.svc.service.storage.listTokens({ now: 0, limit: 1000 })).length).toBe(tokensBefore);
    } finally {
      allow('audit_full');
    }
  });

  it('audit log, for any decision: denials and protocol errors are 503 too', async () => {
    refuse('audit_full', 'audit');
    try {
      const denial = await exchangeToken(suite.svc.url, await suite.issuer.token({}, { foreignKey: true }));
      expect(denial.status).toBe(503);
      expect(denial.body.error).toBe('temporarily_unavailable');
      const get = await fetch(`${suite.svc.url}/token`);
      expect(get.status).toBe(503);
      expect(((await get.json()) as { error: string }).error).toBe('temporarily_unavailable');
    } finally {
      allow('audit_full');
    }
  });

  it('grants again once the file accepts writes', async () => {
    await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token()));
  });
});

describe('the storage is closed under the running service', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite();
  });
  afterAll(async () => {
    await suite?.stop();
  });

  it('answers 503 to an exchange and to /readyz, and issues nothing', async () => {
    await expectGranted(suite.svc, async () => exchangeToken(suite.svc.url, await suite.issuer.token()));
    await suite.svc.service.storage.close();
    const res = await exchangeToken(suite.svc.url, await suite.issuer.token());
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('temporarily_unavailable');
    expect(res.body).not.toHaveProperty('access_token');
    const ready = await fetch(`${suite.svc.url}/readyz`);
    expect(ready.status).toBe(503);
    // Nothing claims a grant after the close: the file holds exactly the one grant from before.
    const db = new DatabaseSync(join(suite.svc.dataDir, 'deploy-sts.sqlite'), { readOnly: true });
    try {
      const rows = db.prepare("SELECT COUNT(*) AS n FROM audit WHERE result = 'granted'").get() as { n: number };
      expect(rows.n).toBe(1);
    } finally {
      db.close();
    }
  });
});
