/**
 * A DEPLOY_STS_* variable that nothing reads is almost always a typo that silently leaves the default in force
 * (DEPLOY_STS_POLICY for DEPLOY_STS_POLICIES): every verb warns about it, naming the closest real variable.
 */
import { OPTION_NAMES } from '../option-names.js';
import { closest } from '../suggest.js';

/** Variables of the test and benchmark harness: not the service's configuration, but not typos either. */
const HARNESS_VARIABLES = ['SKIP_POSTGRES', 'PG_BIN', 'PG_USER', 'TEST_TRACE'];

export const KNOWN_VARIABLES: readonly string[] = [...OPTION_NAMES, ...HARNESS_VARIABLES].map((o) => `DEPLOY_STS_${o}`);

/** One warning per unknown DEPLOY_STS_* variable in `env`. */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('DEPLOY_STS_') && !KNOWN_VARIABLES.includes(name))
    .sort()
    .map((name) => {
      const near = closest(name, OPTION_NAMES.map((o) => `DEPLOY_STS_${o}`));
      return `${name} is not a variable deploy-sts reads, so it changes nothing${near ? ` — did you mean ${near}?` : ` (see deploy-sts serve --help for the variables)`}`;
    });
}
