/** Credential names: the rule is the policy format's (policy/upstream.ts), where names are written. */
import { CREDENTIAL_NAME, CREDENTIAL_NAME_RULE } from '../policy/upstream.js';

export { CREDENTIAL_NAME, CREDENTIAL_NAME_RULE };

/** Why `name` is not a credential name, or undefined when it is one. */
export function credentialNameProblem(name: string): string | undefined {
  return CREDENTIAL_NAME.test(name) ? undefined : `${JSON.stringify(name)} is not a credential name: ${CREDENTIAL_NAME_RULE}`;
}
