/**
 * The gateway's start-up checks: every credential the policies name should be in the store (a missing one is a
 * warning, not an error: `policy check` is offline, and the gateway answers 503 for that site until it is set),
 * and stored credentials should be sealed (a key-encryption key configured).
 */
import type { CredentialStore } from '../credentials/store.js';
import { setCommand } from '../credentials/store.js';
import { KEK_VARIABLE } from '../keys/key-encryption.js';
import type { PolicySet } from '../policy/types.js';
import type { GatewayPlatform } from './platform.js';

/** Credential names the sites bound to a gateway platform use, with the sites that use each (any platform). */
export function credentialsNamed(policies: PolicySet, platforms: readonly GatewayPlatform[]): Map<string, string[]> {
  const named = new Map<string, string[]>();
  for (const file of policies.files) {
    if (!file.site) continue;
    for (const platform of platforms) {
      const binding = platform.binding(policies, file.site);
      if (binding) named.set(binding.credential, [...(named.get(binding.credential) ?? []), file.site]);
    }
  }
  return named;
}

export async function gatewayWarnings(policies: PolicySet, platforms: readonly GatewayPlatform[], credentials: CredentialStore): Promise<string[]> {
  const named = credentialsNamed(policies, platforms);
  const stored = await credentials.list();
  const storedNames = new Set(stored.map((c) => c.name));
  const warnings: string[] = [];
  for (const [name, sites] of named) {
    if (!storedNames.has(name)) {
      warnings.push(`credential ${name} (named by the policy of site ${sites.join(', ')}) is not in the credential store: the gateway answers 503 for ${sites.length === 1 ? 'that site' : 'those sites'} until an operator runs: ${setCommand(name)}`);
    }
  }
  if (!credentials.sealed && (named.size > 0 || stored.length > 0)) {
    warnings.push(`${KEK_VARIABLE} is not set: stored platform credentials are kept unencrypted; set it to a file of 32 random bytes (openssl rand -base64 32) and store them again`);
  }
  return warnings;
}
