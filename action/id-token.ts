/**
 * Fetching the job's GitHub OIDC token (core.getIDToken in the Action) with a bounded wait: the runner's token
 * endpoint can hang, and core puts no time limit on it. Every failure is the id_token_failed ActionError.
 */
import { ActionError, idTokenFailed } from './errors.js';
import { seconds } from '../shared/text.js';

/** How long one OIDC token fetch may take. */
export const DEFAULT_ID_TOKEN_TIMEOUT_MS = 30_000;

export async function fetchIdToken(getIdToken: (audience: string) => Promise<string>, audience: string, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(idTokenFailed(`it gave no token within ${seconds(timeoutMs)} (the runner's ACTIONS_ID_TOKEN_REQUEST_URL did not answer in time)`)),
      timeoutMs,
    );
  });
  try {
    // The race also settles a fetch that fails after the timeout, so its rejection is never left unhandled.
    return await Promise.race([getIdToken(audience), timedOut]);
  } catch (error) {
    throw error instanceof ActionError ? error : idTokenFailed(error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}
