import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileKeyStore } from '../../exchange-service/keys/file-key-store.js';
import { JWKS_MAX_AGE_SECONDS, KeyRing, RETIRED_KEY_GRACE_SECONDS } from '../../exchange-service/keys/key-ring.js';
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

  it('publishes the next key first, and signs with it only after the JWKS cache lifetime', async () => {
    let now = 1_000_000;
    const ring = await KeyRing.open(fileKeyStore(tempDir()), () => now);
    const first = ring.active().kid;
    const next = await ring.rotate();
    // Published at once, so verifiers that cached the JWKS up to max-age=300 s have it before any token it signs.
    expect(ring.jwks().keys.map((k) => k.kid).sort()).toEqual([first, next.kid].sort());
    expect(ring.active().kid).toBe(first);
    expect(ring.next()?.kid).toBe(next.kid);
    now += JWKS_MAX_AGE_SECONDS - 1;
    expect(ring.active().kid).toBe(first);
    now += 1;
    expect(ring.active().kid).toBe(next.kid);
    expect(ring.next()).toBeUndefined();
  });

  it('keeps a retired key published until every token it signed has expired, then drops it', async () => {
    let now = 1_000_000;
    const store = fileKeyStore(tempDir());
    const ring = await KeyRing.open(store, () => now);
    const first = ring.active().kid;
    const second = (await ring.rotate()).kid;
    now += JWKS_MAX_AGE_SECONDS; // the first key is retired now
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

  it('rotates at once with now: true (a compromised key): the new key signs, the old one is withdrawn from the JWKS', async () => {
    let now = 1_000_000;
    const store = fileKeyStore(tempDir());
    const ring = await KeyRing.open(store, () => now);
    const compromised = ring.active().kid;
    now += 10;
    const fresh = await ring.rotate({ now: true });
    expect(ring.active().kid).toBe(fresh.kid);
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid]);
    expect((await store.list()).map((k) => k.kid)).toEqual([fresh.kid]);
    expect(ring.all().map((k) => k.kid)).not.toContain(compromised);
  });

  it('a second rotation within the window queues another key: every key is published 300 s before it signs', async () => {
    let now = 1_000_000;
    const ring = await KeyRing.open(fileKeyStore(tempDir()), () => now);
    const first = ring.active().kid;
    const second = await ring.rotate();
    now += 100;
    const third = await ring.rotate();
    expect(ring.jwks().keys).toHaveLength(3);
    now += JWKS_MAX_AGE_SECONDS - 101;
    expect(ring.active().kid).toBe(first);
    now += 1; // 300 s after the second key was published
    expect(ring.active().kid).toBe(second.kid);
    now += 100; // 300 s after the third
    expect(ring.active().kid).toBe(third.kid);
  });
});
