/**
 * The credential store: platform tokens the deploy gateway uses on a site's behalf, kept in the configured storage
 * and sealed with AES-256-GCM under the key-encryption key (DEPLOY_STS_KEY_ENCRYPTION_KEY_FILE) when one is
 * configured. The additional authenticated data binds the credential's name, so a sealed value copied to another
 * row does not open. A secret leaves this module only through `open` (the gateway, with the row it read for the call)
 * and `reveal` (which reads the row itself), for an upstream request.
 */
import { KEK_VARIABLE, seal, unseal } from '../keys/key-encryption.js';
import type { CredentialInfo, GatewayStorage, StoredCredential } from '../storage/gateway-types.js';
import { credentialNameProblem } from './name.js';

export type CredentialErrorCode = 'bad_name' | 'empty_secret' | 'bad_secret' | 'missing' | 'sealed_without_key' | 'undecryptable';

export class CredentialError extends Error {
  constructor(
    readonly code: CredentialErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CredentialError';
  }
}

/** Longest secret accepted (a Netlify personal access token is ~45 characters). */
export const MAX_SECRET_BYTES = 4096;

const context = (name: string) => `deploy-sts credential ${name}`;

/** The command an operator runs to store a credential (named in errors and in the gateway's 503). */
export const setCommand = (name: string) => `deploy-sts credentials set ${name}`;

function checkName(name: string): void {
  const problem = credentialNameProblem(name);
  if (problem) throw new CredentialError('bad_name', problem);
}

/** Validate a secret read from stdin: one trailing newline trimmed, nothing empty, no control characters. */
export function normaliseSecret(input: string): string {
  const secret = input.endsWith('\r\n') ? input.slice(0, -2) : input.endsWith('\n') ? input.slice(0, -1) : input;
  if (secret.trim() === '') throw new CredentialError('empty_secret', 'the secret is empty: pipe it on standard input, e.g. `printf %s "$TOKEN" | deploy-sts credentials set NAME`');
  if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) throw new CredentialError('bad_secret', `the secret is longer than ${MAX_SECRET_BYTES} bytes; is this the right input?`);
  // A header value may not hold control characters; a pasted token with one would fail at every deploy.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(secret)) throw new CredentialError('bad_secret', 'the secret holds a line break or another control character: store exactly the token, on one line');
  if (secret !== secret.trim()) throw new CredentialError('bad_secret', 'the secret starts or ends with spaces: store exactly the token');
  return secret;
}

export interface CredentialStore {
  /** Whether values are sealed (a key-encryption key is configured). */
  readonly sealed: boolean;
  set(name: string, secret: string): Promise<'created' | 'replaced'>;
  list(): Promise<CredentialInfo[]>;
  remove(name: string): Promise<boolean>;
  /** The secret, for one upstream request. Throws CredentialError (`missing`, `sealed_without_key`, `undecryptable`). */
  reveal(name: string): Promise<string>;
  /** The same for a row already read (GatewayStorage.readCall): `stored` undefined when there is none. */
  open(name: string, stored: StoredCredential | undefined): string;
}

export function credentialStore(storage: GatewayStorage, kek: Buffer | undefined, now = () => Math.floor(Date.now() / 1000)): CredentialStore {
  // The row is read on every use (a removal or replacement takes effect at once); opening the same sealed value
  // again gives the same secret, so the last opening per name is kept rather than decrypted per request.
  const opened = new Map<string, { sealed: string; secret: string }>();
  const open = (name: string, stored: StoredCredential | undefined): string => {
    if (!stored) throw new CredentialError('missing', `credential ${JSON.stringify(name)} is not in the credential store; run: ${setCommand(name)}`);
    if (stored.encryption === 'none') return stored.secret;
    if (!kek) {
      throw new CredentialError('sealed_without_key', `credential ${JSON.stringify(name)} is sealed but ${KEK_VARIABLE} is not set on this replica`);
    }
    const last = opened.get(name);
    if (last?.sealed === stored.secret) return last.secret;
    const secret = unseal(kek, context(name), stored.secret);
    if (secret === undefined) {
      throw new CredentialError('undecryptable', `credential ${JSON.stringify(name)} cannot be decrypted with ${KEK_VARIABLE}: it was sealed with another key (or the row was altered); store it again with ${setCommand(name)}`);
    }
    opened.set(name, { sealed: stored.secret, secret });
    return secret;
  };
  return {
    sealed: kek !== undefined,
    async set(name, secret) {
      checkName(name);
      const value = normaliseSecret(secret);
      return storage.putCredential({
        name,
        secret: kek ? seal(kek, context(name), value) : value,
        encryption: kek ? 'aes-256-gcm' : 'none',
        now: now(),
      });
    },
    list: () => storage.listCredentials(),
    async remove(name) {
      checkName(name);
      return storage.removeCredential(name);
    },
    async reveal(name) {
      return open(name, await storage.getCredential(name));
    },
    open,
  };
}
