/**
 * The main step: inputs → OIDC audience → token exchange → mask, state for the post step, outputs, optional
 * env export, job summary. Runner effects go through `StepIO` so this reads as the sequence it is. Metadata
 * discovery and the exchange share one overall deadline.
 */
import { startDeadline, type Deadline } from './deadline.js';
import { missingIdToken } from './errors.js';
import { exchangeToken, type IssuedToken } from './exchange-client.js';
import { gatewayExports } from './gateway.js';
import { parseInputs } from './inputs.js';
import { discoverAudience } from './metadata.js';
import { printable } from './printable.js';
import type { RetryPolicy } from './retry.js';
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

/** What tests change; the Action runs with the defaults. */
export interface MainStepOptions {
  /** Default: DEFAULT_DEADLINE_MS from the start of the step. */
  deadline?: Deadline;
  retry?: Partial<RetryPolicy>;
}

export async function runMainStep(io: StepIO, env: NodeJS.ProcessEnv, options: MainStepOptions = {}): Promise<IssuedToken> {
  const inputs = parseInputs((name) => io.getInput(name));
  if (!hasIdTokenAccess(env)) throw missingIdToken(readRunContext(env));

  const log = (line: string) => io.info(line);
  const deadline = options.deadline ?? startDeadline(undefined, options.retry?.now);
  const talk = { deadline, log, ...(options.retry ? { retry: options.retry } : {}) };
  let audience = inputs.audience;
  if (audience === undefined) {
    const choice = await discoverAudience(inputs.url, talk);
    audience = choice.audience;
    if (choice.ignored) {
      io.warning(
        `Ignoring the audience ${JSON.stringify(printable(choice.ignored.advertised, 200))} that the service's metadata advertises: ${choice.ignored.reason}. ` +
          'It must be an https:// URL (http:// on loopback) on the same host as `url`. Using the service URL instead; set the `audience` input if the service really expects another audience.',
      );
    }
    const source = choice.source === 'metadata' ? "from the service's metadata" : choice.ignored ? 'the service URL' : 'the service URL; its metadata advertises none';
    io.info(`OIDC audience: ${audience} (${source})`);
  } else {
    io.info(`OIDC audience: ${audience} (from the audience input)`);
  }

  const issued = await exchangeToken(
    { site: inputs.site, scope: inputs.scope, audience },
    { ...talk, url: inputs.url, getIdToken: (aud) => io.getIDToken(aud), mask: (secret) => io.setSecret(secret) },
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

  if (inputs.gateway !== undefined) {
    // The token is masked already; the API URL is not a secret.
    const exports = gatewayExports(inputs.gateway, inputs.url, issued.accessToken);
    for (const v of exports.variables) io.exportVariable(v.name, v.value);
    io.setOutput('api-url', exports.apiUrl);
    io.info(`Exported ${exports.variables.map((v) => `$${v.name}`).join(' and ')} for later steps: ${inputs.gateway} deploys go through ${exports.apiUrl}.`);
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
