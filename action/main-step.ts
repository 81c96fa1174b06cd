/**
 * The main step: inputs → OIDC audience → token exchange → mask, state for the post step, outputs, optional
 * env export, job summary. Runner effects go through `StepIO` so this reads as the sequence it is.
 */
import { missingIdToken } from './errors.js';
import { exchangeToken, type IssuedToken } from './exchange-client.js';
import { parseInputs } from './inputs.js';
import { discoverAudience } from './metadata.js';
import { hasIdTokenAccess, readRunContext } from './run-context.js';
import { summaryHtml, summaryLines } from './summary.js';
import { STATE_TOKEN, STATE_URL } from './state.js';
import { displayUrl } from './url.js';


export interface StepIO {
  getInput(name: string): string;
  setSecret(secret: string): void;
  setOutput(name: string, value: string): void;
  saveState(name: string, value: string): void;
  exportVariable(name: string, value: string): void;
  getIDToken(audience: string): Promise<string>;
  writeSummary(html: string): Promise<void>;
  info(line: string): void;
  warning(line: string): void;
}

export async function runMainStep(io: StepIO, env: NodeJS.ProcessEnv): Promise<IssuedToken> {
  const inputs = parseInputs((name) => io.getInput(name));
  if (!hasIdTokenAccess(env)) throw missingIdToken(readRunContext(env));

  const log = (line: string) => io.info(line);
  let audience = inputs.audience;
  if (audience === undefined) {
    const choice = await discoverAudience(inputs.url, { log });
    audience = choice.audience;
    io.info(`OIDC audience: ${audience} (${choice.source === 'metadata' ? "from the service's metadata" : 'the service URL; its metadata advertises none'})`);
  } else {
    io.info(`OIDC audience: ${audience} (from the audience input)`);
  }

  const issued = await exchangeToken(
    { site: inputs.site, scope: inputs.scope, audience },
    { url: inputs.url, getIdToken: (aud) => io.getIDToken(aud), mask: (secret) => io.setSecret(secret), log },
  );
  // Masked by now (exchangeToken masks on parse). The post step needs the token and where to revoke it.
  if (inputs.revoke) {
    io.saveState(STATE_TOKEN, issued.accessToken);
    io.saveState(STATE_URL, displayUrl(inputs.url));
  }

  io.setOutput('token', issued.accessToken);
  io.setOutput('expires-at', issued.expiresAt.toISOString());
  io.setOutput('scope', issued.scope.join(' '));
  io.setOutput('context', issued.context);
  io.setOutput('site', issued.site);
  io.setOutput('rule', issued.rule);
  if (inputs.exportEnv !== undefined) {
    io.exportVariable(inputs.exportEnv, issued.accessToken);
    io.info(`Exported the token into $${inputs.exportEnv} for later steps.`);
  }

  for (const line of summaryLines(issued)) io.info(line);
  if (!inputs.revoke) io.info('The token will not be revoked when the job ends (revoke: false); it expires on its own.');
  try {
    await io.writeSummary(summaryHtml(issued));
  } catch (error) {
    io.warning(`Could not write the job summary: ${error instanceof Error ? error.message : String(error)}`);
  }
  return issued;
}
