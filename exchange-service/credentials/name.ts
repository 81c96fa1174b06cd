/** What a credential name may be: it appears in policy files, CLI arguments, logs and error messages. */
export const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const CREDENTIAL_NAME_RULE = 'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64 characters (e.g. netlify-acme)';

/** Why `name` is not a credential name, or undefined when it is one. */
export function credentialNameProblem(name: string): string | undefined {
  return CREDENTIAL_NAME.test(name) ? undefined : `${JSON.stringify(name)} is not a credential name: ${CREDENTIAL_NAME_RULE}`;
}
