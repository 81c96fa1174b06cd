/**
 * The post step (runs when the job ends, `post-if: always()`): revoke the token the main step saved, if any.
 * It warns on failure and never fails the job.
 */
import { revokeToken } from './revoke.js';
import { parseServiceUrl } from './url.js';
import { STATE_TOKEN, STATE_URL } from './state.js';

export interface PostIO {
  getState(name: string): string;
  setSecret(secret: string): void;
  info(line: string): void;
  warning(line: string): void;
}

export async function runPostStep(io: PostIO): Promise<void> {
  const token = io.getState(STATE_TOKEN);
  if (token === '') {
    io.info('No deploy token to revoke (none was issued, or revoke: false).');
    return;
  }
  io.setSecret(token);
  let url: URL;
  try {
    url = parseServiceUrl(io.getState(STATE_URL));
  } catch {
    io.warning('Could not revoke the deploy token: the service URL was not saved; it expires on its own.');
    return;
  }
  const outcome = await revokeToken(url, token, { log: (line) => io.info(line) });
  if (outcome.revoked) io.info('Revoked the deploy token.');
  else io.warning(`Could not revoke the deploy token (${outcome.reason}); it stays valid until it expires.`);
}
