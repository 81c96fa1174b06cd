import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileKeyStore } from '../../exchange-service/keys/file-key-store.js';
import { KeyRing, RETIRED_KEY_GRACE_SECONDS } from '../../exchange-service/keys/key-ring.js';
import { tempDir } from '../helpers/service.js';

describe('the signing key ring', () => {
  it('creates one key on first start, in a file only its owner can read', async () => {
    const dir = tempDir();
    const ring = await KeyRing.open(fileKeyStore(dir));
    expect(ring.all()).toHaveLength(1);
    const file = join(dir, 'keys', `${ring.active().kid}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(ring.jwks().keys[0]).not.toHaveProperty('d');
    // A second start finds the same key.
    expect((await KeyRing.open(fileKeyStore(dir))).active().kid).toBe(ring.active().kid);
  });

  it('keeps a retired key published until every token it signed has expired, then drops it', async () => {
    let now = 1_000_000;
    const store = fileKeyStore(tempDir());
    const ring = await KeyRing.open(store, () => now);
    const first = ring.active().kid;
    now += 10;
    const second = (await ring.rotate()).kid;
    expect(ring.active().kid).toBe(second);
    expect(ring.jwks().keys.map((k) => k.kid).sort()).toEqual([first, second].sort());

    now += RETIRED_KEY_GRACE_SECONDS; // exactly at the end of the grace period: still published
    await ring.reload();
    expect(ring.jwks().keys.map((k) => k.kid)).toContain(first);
    now += 1;
    await ring.reload();
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([second]);
    expect((await store.list()).map((k) => k.kid)).toEqual([second]);
  });
});
