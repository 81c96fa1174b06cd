/** What every verb gets: the environment it reads configuration from, and `run` to report its exit status. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** Run the verb's work; its number is the exit status (0 ok, 1 failure or denial). */
  run(work: () => Promise<number>): Promise<void>;
}

/** A mistake in how the command was typed: exit status 2, with the verb's usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
