/**
 * `deploy-sts credentials set NAME | list [--json] | remove NAME`: the operator's side of the credential store.
 * The secret is read from standard input only; it is never printed, not even by `list`.
 */
import type { Readable, Writable } from 'node:stream';
import { KEK_VARIABLE, readKeyEncryptionKey } from '../keys/key-encryption.js';
import type { CredentialInfo } from '../storage/gateway-types.js';
import type { Storage } from '../storage/types.js';
import { credentialNameProblem } from './name.js';
import { readSecret } from './read-secret.js';
import { CredentialError, credentialStore } from './store.js';

export interface CredentialsIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  print(text: string): void;
  /** Warnings and prompts (stderr). */
  stderr: Writable;
  /** Open the configured storage (closed by the caller). */
  storage(): Promise<Storage>;
  /** DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE, when set. */
  kekFile: string | undefined;
}

export class CredentialsUsageError extends Error {}

const iso = (t: number | null) => (t === null ? null : new Date(t * 1000).toISOString());

function asJson(c: CredentialInfo) {
  return { name: c.name, created: iso(c.createdAt), updated: iso(c.updatedAt), last_used: iso(c.lastUsedAt), encryption: c.encryption };
}

export const CREDENTIALS_USAGE = `deploy-sts credentials set NAME      (the secret on standard input, e.g. printf %s "$TOKEN" | deploy-sts credentials set NAME)
  deploy-sts credentials list [--json]
  deploy-sts credentials remove NAME`;

/** `rest`: the arguments after `credentials`; flags were parsed by the caller. */
export async function credentialsCommand(verb: string | undefined, positionals: string[], json: boolean, io: CredentialsIo): Promise<number> {
  if (verb !== 'set' && verb !== 'list' && verb !== 'remove') throw new CredentialsUsageError(`unknown command: credentials ${verb ?? ''}`.trim());
  if (verb === 'set' && positionals.length > 1) {
    throw new CredentialsUsageError(
      'credentials set takes only the NAME: never put a secret on the command line (it stays in shell history and is visible in ps); pipe it on standard input instead',
    );
  }
  if (verb !== 'list' && positionals.length !== 1) throw new CredentialsUsageError(`credentials ${verb} needs the credential NAME`);
  if (verb === 'list' && positionals.length > 0) throw new CredentialsUsageError('credentials list takes no arguments');
  const name = positionals[0];
  if (name !== undefined) {
    const problem = credentialNameProblem(name);
    if (problem) throw new CredentialsUsageError(problem);
  }

  // Read the secret before opening anything: a cancelled prompt leaves no trace.
  const secret = verb === 'set' ? await readSecret(name!, io.stdin, io.stderr) : undefined;
  const kek = io.kekFile ? await readKeyEncryptionKey(io.kekFile) : undefined;
  const storage = await io.storage();
  try {
    const store = credentialStore(storage.gateway, kek);
    if (verb === 'set') {
      if (!kek) io.stderr.write(`deploy-sts: warning: ${KEK_VARIABLE} is not set: credential ${name} is stored unencrypted; set it to a file of 32 random bytes to seal stored credentials\n`);
      let outcome: 'created' | 'replaced';
      try {
        outcome = await store.set(name!, secret!);
      } catch (error) {
        if (error instanceof CredentialError) {
          io.stderr.write(`deploy-sts: ${error.message}\n`);
          return 1;
        }
        throw error;
      }
      io.print(`${outcome === 'created' ? 'stored' : 'replaced'} credential ${name} (${kek ? 'sealed with AES-256-GCM' : 'NOT encrypted'}) in ${storage.kind}`);
      return 0;
    }
    if (verb === 'remove') {
      if (await store.remove(name!)) {
        io.print(`removed credential ${name}; sites whose policy names it answer 503 until it is set again`);
        return 0;
      }
      io.stderr.write(`deploy-sts: no credential named ${name} (see deploy-sts credentials list)\n`);
      return 1;
    }
    const list = await store.list();
    if (json) io.print(JSON.stringify(list.map(asJson), null, 2));
    else if (list.length === 0) io.print('no stored credentials (add one with: deploy-sts credentials set NAME)');
    else {
      io.print(`${'NAME'.padEnd(24)} ${'CREATED'.padEnd(24)} ${'LAST USED'.padEnd(24)} ENCRYPTION`);
      for (const c of list) io.print(`${c.name.padEnd(24)} ${iso(c.createdAt)!.padEnd(24)} ${(iso(c.lastUsedAt) ?? 'never').padEnd(24)} ${c.encryption}`);
    }
    return 0;
  } finally {
    await storage.close();
  }
}
