/**
 * Replicas of the service sharing one PostgreSQL database, as they are deployed: each one is the real CLI with
 * DEPLOY_STS_DATABASE_URL, the same public URL and audience, and the same key-encryption key file (the signing keys
 * live in the database, sealed). Each binds its own loopback port; the load generator spreads connections over them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../testing/free-port.js';
import { startService, type Server } from './processes.js';

export interface ReplicaOptions {
  count: number;
  issuer: string;
  audience: string;
  policies: string;
  databaseUrl: string;
  /** Where the key-encryption key file and each replica's (unused) data directory go. */
  work: string;
  /** Each replica logs as deployed (info, one line per request) into its own file: these, by replica. */
  logFiles?: string[];
}

/** A file of 32 random bytes (base64), mode 0600: DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE for every replica. */
export function writeKeyEncryptionKey(dir: string): string {
  const file = join(dir, 'kek');
  writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return file;
}

async function startReplica(options: ReplicaOptions, kekFile: string, logFile: string | undefined): Promise<Server> {
  // The probed port may be taken before the replica binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startService({
        issuer: options.issuer,
        audience: options.audience,
        publicUrl: options.audience,
        policies: options.policies,
        dataDir: mkdtempSync(join(options.work, 'replica-')),
        databaseUrl: options.databaseUrl,
        keyEncryptionKeyFile: kekFile,
        port: await freePort(),
        ...(logFile ? { logFile } : {}),
      });
    } catch (error) {
      if (attempt >= 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
    }
  }
}

/** Start `count` replicas at once (they race for the migrations and the first signing key, as a deployment does). */
export async function startReplicas(options: ReplicaOptions): Promise<Server[]> {
  const kekFile = writeKeyEncryptionKey(options.work);
  const started = await Promise.allSettled(Array.from({ length: options.count }, (_, i) => startReplica(options, kekFile, options.logFiles?.[i])));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}
