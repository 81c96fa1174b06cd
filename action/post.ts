/** Entry point of the post step: wires @actions/core into runPostStep. Never fails the job. */
import * as core from '@actions/core';
import { runPostStep } from './post-step.js';

try {
  await runPostStep({
    getState: (name) => core.getState(name),
    setSecret: (secret) => core.setSecret(secret),
    info: (line) => core.info(line),
    warning: (line) => core.warning(line),
  });
} catch (error) {
  core.warning(`Could not revoke the deploy token: ${error instanceof Error ? error.message : String(error)}`);
}
