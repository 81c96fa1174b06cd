/** `deploy-sts tokens list|revoke`, `deploy-sts audit` and `deploy-sts keys rotate|seal`: the service's storage, from the command line. */
import type { Command } from 'commander';
import type { StorageOptions } from '../config.js';
import type { OpenedStorage } from '../storage/open.js';
import { parseTime } from '../time.js';
import { UsageError, type CliContext } from './context.js';
import { dataDirOption, examples, option } from './options.js';
import { print, printJson, table } from './output.js';

const STORAGE_NOTE = '\nUses DEPLOY_STS_DATABASE_URL (PostgreSQL) when set, else the SQLite database in the data directory.\n';
const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * Run `work` with the storage `serve` uses, from the same configuration (SQLite in the data directory, or
 * PostgreSQL), and close it after.
 */
export async function withStorage<T>(dataDir: string | undefined, env: NodeJS.ProcessEnv, work: (opened: OpenedStorage, config: StorageOptions) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: the verbs that do not touch storage start without zod, SQLite and PostgreSQL.
  const { loadStorageConfig } = await import('../config.js');
  const config = loadStorageConfig(env, { DATA_DIR: dataDir });
  const { openStorage } = await import('../storage/open.js');
  const opened = await openStorage(config);
  try {
    return await work(opened, config);
  } finally {
    await opened.storage.close();
  }
}

export function recordsCommands(program: Command, ctx: CliContext): void {
  const tokens = program
    .command('tokens')
    .description('the deploy tokens this service issued: list them, revoke one')
    .addHelpText('after', `${examples('deploy-sts tokens list --site docs', 'deploy-sts tokens revoke <jti>')}${STORAGE_NOTE}`);

  tokens
    .command('list')
    .description('unexpired tokens issued (from the audit log), newest first, with their revocation state')
    .addOption(option('--site <slug>', 'only tokens for this site'))
    .addOption(option('--json', 'print JSON (snake_case, as the HTTP API)'))
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('deploy-sts tokens list --site docs')}${STORAGE_NOTE}`)
    .action((flags: { site?: string; json?: boolean; dataDir?: string }) =>
      ctx.run(() =>
        withStorage(flags.dataDir, ctx.env, async ({ storage }) => {
          const list = await storage.listTokens({ site: flags.site, now: Math.floor(Date.now() / 1000) });
          if (flags.json) printJson(list);
          else if (list.length === 0) print(`no unexpired tokens${flags.site ? ` for site ${flags.site}` : ''}`);
          else {
            print(
              table(
                ['JTI', 'SITE', 'CONTEXT', 'SCOPE', 'REPOSITORY', 'EXPIRES', 'STATE'],
                list.map((t) => [t.jti, t.site, t.context, t.scope, t.repository, iso(t.expiresAt), t.revoked ? 'REVOKED' : 'active']),
              ),
            );
          }
          return 0;
        }),
      ),
    );

  tokens
    .command('revoke')
    .description('revoke one token by its jti: /introspect answers active:false for it at once, at every replica')
    .argument('<jti>', 'the jti of the token (see deploy-sts tokens list)')
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('deploy-sts tokens revoke 0b6f3c1e-2a4d-4c5e-9f7a-1d2e3f4a5b6c')}${STORAGE_NOTE}`)
    .action((jti: string, flags: { dataDir?: string }) =>
      ctx.run(() =>
        withStorage(flags.dataDir, ctx.env, async ({ storage }) => {
          const token = await storage.findToken(jti);
          if (!token) {
            process.stderr.write(`deploy-sts: no token with jti ${jti} was issued by this service (see deploy-sts tokens list)\n`);
            return 1;
          }
          await storage.revoke(jti, token.expiresAt);
          print(`revoked ${jti} (site ${token.site}, was valid until ${iso(token.expiresAt)})`);
          return 0;
        }),
      ),
    );

  program
    .command('audit')
    .description('the audit log, newest first: every token decision, granted and denied, with its reason, and every deploy-gateway call (ids gw-N)')
    .addOption(option('--site <slug>', 'only decisions for this site'))
    .addOption(option('--since <time>', 'only decisions since (ISO date, unix seconds, or 30m / 12h / 7d ago)'))
    .addOption(option('--limit <n>', 'at most this many records', { default: '100' }))
    .addOption(option('--json', 'print JSON (snake_case, as the HTTP API and the logs)'))
    .addOption(dataDirOption())
    .addHelpText('after', `${examples('deploy-sts audit --site docs --since 1h', 'deploy-sts audit --json --limit 10')}${STORAGE_NOTE}`)
    .action((flags: { site?: string; since?: string; limit?: string; json?: boolean; dataDir?: string }) =>
      ctx.run(async () => {
        const limit = flags.limit === undefined ? 100 : Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive whole number, got ${JSON.stringify(flags.limit)}`);
        const since = flags.since === undefined ? undefined : parseTime(flags.since, 'since');
        return withStorage(flags.dataDir, ctx.env, async ({ storage }) => {
          // Token decisions and deploy-gateway calls, one list (gateway/audit-view.ts).
          const { mergeAudit, gatewayOutcome } = await import('../gateway/audit-view.js');
          const rows = mergeAudit(await storage.listAudit({ site: flags.site, since, limit }), await storage.gateway.listGatewayAudit({ site: flags.site, since, limit }), limit);
          if (flags.json) printJson(rows);
          else if (rows.length === 0) print('no audit records');
          else {
            print(
              table(
                ['ID', 'TIME', 'RESULT', 'SITE', 'RULE', 'REPOSITORY', 'EVENT', 'REASON'],
                rows.map((r) =>
                  r.kind === 'gateway'
                    ? [`gw-${r.id}`, iso(r.time), r.result, r.site ?? '-', r.context ?? '-', '-', `${r.method} ${r.route}${r.deployId ? ` deploy ${r.deployId}` : ''}`, gatewayOutcome(r)]
                    : [String(r.id), iso(r.time), r.result, r.site ?? '-', r.rule ?? '-', r.repository ?? '-', r.eventName ?? '-', `${r.reason}${r.result === 'denied' ? `: ${r.detail}` : ''}`],
                ),
              ),
            );
          }
          return 0;
        });
      }),
    );

  const keys = program.command('keys').description('the keys that sign deploy tokens').addHelpText('after', `${examples('deploy-sts keys rotate')}${STORAGE_NOTE}`);
  keys
    .command('rotate')
    .description('publish the next signing key, which signs 300 s later (the JWKS cache lifetime); the previous one stays in the JWKS until every token it signed has expired. --now: for a compromised key')
    .addOption(dataDirOption())
    .addOption(option('--now', 'the new key signs at once and every other key is withdrawn: tokens they signed stop verifying (a compromised key)'))
    .addHelpText('after', `${examples('deploy-sts keys rotate', 'deploy-sts keys rotate --now', 'DEPLOY_STS_DATABASE_URL=postgres://deploy_sts:PASSWORD@db.internal:5432/deploy_sts deploy-sts keys rotate')}${STORAGE_NOTE}`)
    .action((flags: { dataDir?: string; now?: boolean }) =>
      ctx.run(() =>
        withStorage(flags.dataDir, ctx.env, async (opened, config) => {
          // Opening the ring creates the first key when there is none; the rotation then replaces it.
          const { openSigningKeys } = await import('../keys/open.js');
          const { JWKS_MAX_AGE_SECONDS, RETIRED_KEY_GRACE_SECONDS } = await import('../keys/key-ring.js');
          const { keys: ring } = await openSigningKeys(opened, { keyEncryptionKeyFile: config.keyEncryptionKeyFile });
          const before = ring.active().kid;
          if (flags.now) {
            const fresh = await ring.rotate({ now: true });
            print(
              `new signing key ${fresh.kid} signs now; ${before} and every other key are withdrawn from the JWKS, so tokens they signed stop verifying. ` +
                `Running services (every replica) pick the change up within 30 s; verifiers that cached the JWKS refuse new tokens until they refetch it (at most ${JWKS_MAX_AGE_SECONDS} s): tell the deploy platforms to refetch it now.`,
            );
            return 0;
          }
          const fresh = await ring.rotate();
          const at = new Date(fresh.createdAt * 1000).toISOString();
          print(
            `new signing key ${fresh.kid} is published now and signs from ${at} (in ${JWKS_MAX_AGE_SECONDS} s, the JWKS cache lifetime), when ${before} stops signing; ` +
              `${before} stays in the JWKS for ${RETIRED_KEY_GRACE_SECONDS} s more so tokens it signed keep verifying. Running services (every replica) pick the change up within 30 s. ` +
              'For a compromised key use keys rotate --now.',
          );
          return 0;
        }),
      ),
    );

  keys
    .command('seal')
    .description(
      'seal, once, the signing keys in the PostgreSQL database that are not sealed with the key-encryption key (written before DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE was set, or sealed by deploy-sts 0.1); serve refuses such keys until then. Lists every key it seals: check they are yours',
    )
    .addOption(dataDirOption())
    .addHelpText(
      'after',
      `${examples('DEPLOY_STS_DATABASE_URL=postgres://deploy_sts:PASSWORD@db.internal:5432/deploy_sts DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE=/etc/deploy-sts/kek deploy-sts keys seal')}\nWith SQLite the signing keys are files in the data directory (mode 0600) and are not sealed.\n`,
    )
    .action((flags: { dataDir?: string }) =>
      ctx.run(async () => {
        // What it needs is checked before the storage is opened (which would make a SQLite database as it goes).
        const { loadStorageConfig } = await import('../config.js');
        const needs = loadStorageConfig(ctx.env, { DATA_DIR: flags.dataDir });
        if (needs.databaseUrl === undefined) {
          throw new UsageError(
            'keys seal is for signing keys kept in PostgreSQL (DEPLOY_STS_DATABASE_URL); with SQLite they are files in the data directory, mode 0600, and are not sealed',
          );
        }
        if (!needs.keyEncryptionKeyFile) {
          throw new UsageError('keys seal needs the key-encryption key: set DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE to the file of 32 random bytes every replica uses');
        }
        return withStorage(flags.dataDir, ctx.env, async (opened, config) => {
          if (opened.backend.kind !== 'postgres' || !config.keyEncryptionKeyFile) throw new Error('keys seal: PostgreSQL and a key-encryption key were checked above');
          const { readKeyEncryptionKey } = await import('../keys/key-encryption.js');
          const { sealStoredKeys } = await import('../keys/db-key-store.js');
          const { sealed, alreadySealed } = await sealStoredKeys(opened.backend.pool, await readKeyEncryptionKey(config.keyEncryptionKeyFile));
          if (sealed.length === 0) {
            print(`nothing to seal: all ${alreadySealed} signing key(s) in ${opened.backend.shownUrl} are sealed`);
            return 0;
          }
          print(
            table(
              ['KID', 'ALG', 'CREATED', 'RETIRED', 'WAS'],
              sealed.map((k) => [k.kid, k.alg, iso(k.createdAt), k.retiredAt === null ? '-' : iso(k.retiredAt), k.was === 'plaintext' ? 'unencrypted' : 'sealed by 0.1']),
            ),
          );
          print(`sealed ${sealed.length} signing key(s) in ${opened.backend.shownUrl}; restart the service (every replica) or send it SIGHUP to load them.`);
          if (alreadySealed > 0) {
            print(
              `warning: ${alreadySealed} key(s) were sealed already, so this service wrote none of the keys above since the key-encryption key was set. If you did not just upgrade from 0.1 or set the key-encryption key, someone who can write the database may have added them: rotate with keys rotate --now and find out who could write the database.`,
            );
          }
          return 0;
        });
      }),
    );
}
