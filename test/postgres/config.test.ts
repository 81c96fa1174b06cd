import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../exchange-service/config.js';
import { redactDatabaseUrl } from '../../exchange-service/storage/database-url.js';

const base = { DEPLOY_STS_POLICIES: 'examples/policies' };

function problems(env: Record<string, string>): string {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return '';
}

describe('choosing the storage', () => {
  it('uses SQLite in the data directory when DEPLOY_STS_DATABASE_URL is unset or empty', () => {
    expect(loadConfig(base).databaseUrl).toBeUndefined();
    expect(loadConfig({ ...base, DEPLOY_STS_DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it('uses PostgreSQL for a postgres:// or postgresql:// URL, with an optional key-encryption key file', () => {
    const config = loadConfig({
      ...base,
      DEPLOY_STS_DATABASE_URL: 'postgresql://sts:pw@db.internal:5432/sts',
      DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: '/run/secrets/kek',
    });
    expect(config.databaseUrl).toBe('postgresql://sts:pw@db.internal:5432/sts');
    expect(config.keyEncryptionKeyFile).toBe('/run/secrets/kek');
  });

  it('refuses another kind of URL without repeating its password', () => {
    const message = problems({ DEPLOY_STS_DATABASE_URL: 'mysql://sts:s3cret-pw@db/sts' });
    expect(message).toMatch(/DEPLOY_STS_DATABASE_URL .*must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(message).toContain('mysql://sts:***@db/sts');
    expect(message).not.toContain('s3cret-pw');
  });

  it('accepts a key-encryption key file with SQLite too, where it seals the stored platform credentials', () => {
    expect(problems({ DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE: '/run/secrets/kek' })).toBe('');
  });
});

describe('showing a database URL', () => {
  it('hides the password and secret parameters, keeping what identifies the database', () => {
    expect(redactDatabaseUrl('postgres://sts:pw@db.internal:5432/sts?sslmode=require&password=x&sslpassword=y')).toBe(
      'postgres://sts:***@db.internal:5432/sts?sslmode=require&password=***&sslpassword=***',
    );
    expect(redactDatabaseUrl('postgres://db.internal/sts')).toBe('postgres://db.internal/sts');
    expect(redactDatabaseUrl('not a url with pw')).not.toContain('pw');
  });
});
