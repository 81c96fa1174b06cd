/**
 * The credential store, through the real `deploy-sts credentials` command and a real SQLite data directory: the
 * secret comes from standard input only, is never printed, and is sealed with AES-256-GCM under the key-encryption
 * key when one is configured, bound to its name.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { CredentialError, credentialStore, normaliseSecret } from '../../exchange-service/credentials/store.js';
import { openSqlite } from '../../exchange-service/storage/sqlite.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'build', 'exchange-service', 'cli.js');
const SECRET = 'nfp_credential_f00dfeedcafe0123456789abcdef';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-sts-credentials-'));
  dirs.push(dir);
  return dir;
}

function kekFile(dir: string, key = randomBytes(32)): string {
  const file = join(dir, `kek-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, key.toString('base64'), { mode: 0o600 });
  return file;
}

function cli(dir: string, args: string[], input = '', env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, 'credentials', ...args], {
    input,
    env: { PATH: process.env.PATH ?? '', DEPLOY_STS_DATA_DIR: dir, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function storedRow(dir: string, name: string): { secret: string; encryption: string } | undefined {
  const db = new DatabaseSync(join(dir, 'deploy-sts.sqlite'), { readOnly: true });
  try {
    return db.prepare('SELECT secret, encryption FROM credentials WHERE name = ?').get(name) as { secret: string; encryption: string } | undefined;
  } finally {
    db.close();
  }
}

async function reveal(dir: string, name: string, kek?: Buffer): Promise<string> {
  const storage = openSqlite(dir);
  try {
    return await credentialStore(storage.gateway, kek).reveal(name);
  } finally {
    await storage.close();
  }
}

describe('deploy-sts credentials set', { timeout: 120_000 }, () => {
  it('reads the secret from standard input, trims one trailing newline, and never prints it', async () => {
    const dir = dataDir();
    const set = cli(dir, ['set', 'netlify-acme'], `${SECRET}\n`);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/stored credential netlify-acme \(NOT encrypted\)/);
    expect(set.stderr).toMatch(/DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE is not set/);
    expect(set.stdout + set.stderr).not.toContain(SECRET);
    expect(await reveal(dir, 'netlify-acme')).toBe(SECRET);
    const again = cli(dir, ['set', 'netlify-acme'], 'nfp_other');
    expect(again.stdout).toMatch(/replaced credential netlify-acme/);
    expect(await reveal(dir, 'netlify-acme')).toBe('nfp_other');
  });

  it('refuses a secret on the command line, as an argument or a flag', () => {
    const dir = dataDir();
    for (const args of [['set', 'netlify-acme', SECRET], ['set', 'netlify-acme', `--secret=${SECRET}`], ['set', 'netlify-acme', '--token', SECRET]]) {
      const result = cli(dir, args, SECRET);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/never (put a secret on the command line|as an argument)/);
      expect(result.stdout).toBe('');
    }
    expect(cli(dir, ['list']).stdout).toMatch(/no stored credentials/);
  });

  it('refuses an empty value, and one with a line break or surrounding spaces', () => {
    const dir = dataDir();
    for (const input of ['', '\n', 'abc\n\n', ' abc']) {
      const result = cli(dir, ['set', 'netlify-acme'], input);
      expect(result.code, JSON.stringify(input)).toBe(1);
      expect(result.stderr).toMatch(/secret/);
    }
    expect(cli(dir, ['list']).stdout).toMatch(/no stored credentials/);
  });

  it('refuses a name that is not a credential name', () => {
    const result = cli(dataDir(), ['set', 'Netlify Acme'], SECRET);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is not a credential name/);
  });
});

describe('deploy-sts credentials list and remove', { timeout: 120_000 }, () => {
  it('lists name, creation, last use and encryption — never the secret', () => {
    const dir = dataDir();
    cli(dir, ['set', 'netlify-acme'], SECRET);
    cli(dir, ['set', 'netlify-blog'], `${SECRET}-2`);
    const text = cli(dir, ['list']);
    expect(text.stdout).toMatch(/^NAME +CREATED +LAST USED +ENCRYPTION/);
    expect(text.stdout).toMatch(/netlify-acme +\d{4}-\d\d-\d\dT[\d:.]+Z +never +none/);
    const json = JSON.parse(cli(dir, ['list', '--json']).stdout) as Record<string, unknown>[];
    expect(json.map((c) => c.name)).toEqual(['netlify-acme', 'netlify-blog']);
    expect(Object.keys(json[0]!).sort()).toEqual(['created', 'encryption', 'last_used', 'name', 'updated']);
    expect(JSON.stringify(json) + text.stdout).not.toContain(SECRET);
  });

  it('removes a credential, and says so when there is none', () => {
    const dir = dataDir();
    cli(dir, ['set', 'netlify-acme'], SECRET);
    const removed = cli(dir, ['remove', 'netlify-acme']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/removed credential netlify-acme/);
    const again = cli(dir, ['remove', 'netlify-acme']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no credential named netlify-acme/);
  });
});

describe('sealing with DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE (SQLite too)', { timeout: 120_000 }, () => {
  it('stores only ciphertext, and opens it with the same key', async () => {
    const dir = dataDir();
    const key = randomBytes(32);
    const result = cli(dir, ['set', 'netlify-acme'], SECRET, { DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kekFile(dir, key) });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/sealed with AES-256-GCM/);
    expect(result.stderr).toBe('');
    const row = storedRow(dir, 'netlify-acme')!;
    expect(row.encryption).toBe('aes-256-gcm');
    expect(row.secret).toMatch(/^v1\./);
    expect(row.secret).not.toContain(SECRET);
    expect(await reveal(dir, 'netlify-acme', key)).toBe(SECRET);
  });

  it('refuses to open a sealed credential without the key or with another key', async () => {
    const dir = dataDir();
    cli(dir, ['set', 'netlify-acme'], SECRET, { DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kekFile(dir) });
    await expect(reveal(dir, 'netlify-acme')).rejects.toMatchObject({ code: 'sealed_without_key' });
    await expect(reveal(dir, 'netlify-acme', randomBytes(32))).rejects.toMatchObject({ code: 'undecryptable' });
  });

  it('binds the sealed value to its name: copied to another name it does not open', async () => {
    const dir = dataDir();
    const key = randomBytes(32);
    const set = cli(dir, ['set', 'netlify-acme'], SECRET, { DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: kekFile(dir, key) });
    expect(set.code, set.stderr).toBe(0);
    const row = storedRow(dir, 'netlify-acme')!;
    const storage = openSqlite(dir);
    try {
      await storage.gateway.putCredential({ name: 'netlify-evil', secret: row.secret, encryption: 'aes-256-gcm', now: 1 });
      const error = await credentialStore(storage.gateway, key).reveal('netlify-evil').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CredentialError);
      expect((error as CredentialError).code).toBe('undecryptable');
      expect((error as Error).message).not.toContain(SECRET);
    } finally {
      await storage.close();
    }
  });

  it('names the command that fixes a missing credential', async () => {
    await expect(reveal(dataDir(), 'netlify-acme')).rejects.toThrow('deploy-sts credentials set netlify-acme');
  });
});

describe('what a secret may be', () => {
  it('keeps the value exactly, minus one trailing newline', () => {
    expect(normaliseSecret('abc\n')).toBe('abc');
    expect(normaliseSecret('abc\r\n')).toBe('abc');
    expect(normaliseSecret('abc')).toBe('abc');
    expect(() => normaliseSecret('x'.repeat(5000))).toThrow(/longer than/);
  });
});
