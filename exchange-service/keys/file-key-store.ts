/** Signing keys as files in `<data dir>/keys/<kid>.json`, mode 0600, written atomically (temp file + rename). */
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyStore, StoredKey } from './key-store.js';

export function fileKeyStore(dataDir: string): KeyStore {
  const dir = join(dataDir, 'keys');
  const path = (kid: string) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(kid)) throw new Error(`invalid key id ${JSON.stringify(kid)}`);
    return join(dir, `${kid}.json`);
  };
  async function write(key: StoredKey): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path(key.kid)}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(key), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, path(key.kid));
  }
  return {
    async list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      const keys: StoredKey[] = [];
      for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
        keys.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as StoredKey);
      }
      return keys;
    },
    save: write,
    async retire(kid, at) {
      const key = JSON.parse(await readFile(path(kid), 'utf8')) as StoredKey;
      if (key.retiredAt === null || key.retiredAt > at) await write({ ...key, retiredAt: at });
    },
    async delete(kid) {
      await rm(path(kid), { force: true });
    },
  };
}
