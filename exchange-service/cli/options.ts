/**
 * Options as `--help` shows them: what the flag does, the environment variable it also reads and its default, in
 * words. Commander only parses; it is never given a default or an environment variable to read itself, so the
 * configuration keeps one path — flag, then DEPLOY_STS_<NAME>, then default — in config.ts.
 */
import { Option } from 'commander';

export interface OptionHelp {
  /** The DEPLOY_STS_* variable the option also reads. */
  env?: string;
  /** The default, in words (e.g. `8080`, `the public URL`). */
  default?: string;
}

export function option(flags: string, description: string, help: OptionHelp = {}): Option {
  const notes = [help.env ? `env ${help.env}` : undefined, help.default ? `default: ${help.default}` : undefined].filter(Boolean);
  return new Option(flags, notes.length ? `${description} (${notes.join('; ')})` : description);
}

/** `--data-dir`, shared by the verbs that read the service's storage or the dev issuer's key. */
export const dataDirOption = () =>
  option('--data-dir <dir>', 'the data directory of the service (SQLite database, signing keys, dev issuer key)', { env: 'DEPLOY_STS_DATA_DIR', default: '.data' });

/** The `Example:` block every verb's `--help` ends with. */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
