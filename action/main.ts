/** Entry point of the main step: wires @actions/core into runMainStep. */
import * as core from '@actions/core';
import { toActionError } from './errors.js';
import { runMainStep } from './main-step.js';

try {
  await runMainStep(
    {
      getInput: (name) => core.getInput(name),
      setSecret: (secret) => core.setSecret(secret),
      setOutput: (name, value) => core.setOutput(name, value),
      saveState: (name, value) => core.saveState(name, value),
      exportVariable: (name, value) => core.exportVariable(name, value),
      getIDToken: (audience) => core.getIDToken(audience),
      writeSummary: async (html) => {
        await core.summary.addRaw(html).write();
      },
      info: (line) => core.info(line),
      warning: (line) => core.warning(line),
    },
    process.env,
  );
} catch (error) {
  core.setFailed(toActionError(error).render());
}
