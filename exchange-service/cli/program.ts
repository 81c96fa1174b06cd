/**
 * The `deploy-sts` command line, built with commander — the Node.js ecosystem's standard CLI library (used by
 * npm's own tooling, vite, eslint): parsing, `--help` on every verb, `--version`, "did you mean" for unknown verbs
 * and flags, and errors with exit statuses come built in and behave as users expect. Exit status: 0 ok, 1 failure
 * (or a denial), 2 usage (an unknown verb or flag, a missing argument).
 *
 * Start-up: every verb is registered (its flags and help) from light modules; the modules that do a verb's work —
 * zod's schemas, jose, storage, the service, the workflow checker — are imported inside its action, so a verb loads
 * only what it runs (`deploy-sts workflows check` starts without zod and jose; `--help` without any of them).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../package-root.js';
import { UsageError, type CliContext } from './context.js';
import { credentialsCommands, refuseSecretArguments } from './credentials.js';
import { devCommands } from './dev.js';
import { unknownVariableWarnings } from './env-check.js';
import { warn } from './output.js';
import { policyCommand } from './policy.js';
import { recordsCommands } from './records.js';
import { serveCommand } from './serve.js';
import { workflowsCommands } from './workflows.js';

/** Commander's errors that mean the command was mistyped (exit 2), as opposed to help or version shown (exit 0). */
const USAGE_ERRORS = new Set([
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.excessArguments',
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.conflictingOption',
  'commander.invalidArgument',
]);

/** The full name of a command, e.g. `deploy-sts policy check`. */
function fullName(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function usageLine(command: Command): string {
  return `Usage: ${fullName(command)} ${command.usage()}\nRun \`${fullName(command)} --help\` for every option and an example.\n`;
}

/** Where help and errors go: stdout and stderr, unless a caller (a test of every verb's help) collects them. */
export interface ProgramOutput {
  out(text: string): void;
  err(text: string): void;
}

const STANDARD_OUTPUT: ProgramOutput = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

export function buildProgram(ctx: CliContext, output: ProgramOutput = STANDARD_OUTPUT): Command {
  const program = new Command('deploy-sts');
  program
    .description('trade a GitHub Actions OIDC token for a short-lived, site-scoped deploy token: the exchange service and its tools')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpCommand('help [verb]', 'print the help of a verb')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nEvery serve option also reads DEPLOY_STS_<NAME> (e.g. --data-dir ↔ DEPLOY_STS_DATA_DIR); see `deploy-sts serve --help`.\n' +
        'Exit status: 0 ok, 1 failure or denial, 2 usage.\n\nExamples:\n  $ deploy-sts serve --dev-defaults\n  $ deploy-sts policy check policies/\n  $ deploy-sts policy --help\n',
    );
  serveCommand(program, ctx);
  policyCommand(program, ctx);
  recordsCommands(program, ctx);
  credentialsCommands(program, ctx);
  workflowsCommands(program, ctx);
  devCommands(program, ctx);

  // Every command: help with its options, errors as exit statuses, and no process.exit of commander's own.
  const configure = (command: Command) => {
    command.exitOverride().configureOutput({
      writeOut: (text) => output.out(text),
      writeErr: (text) => output.err(text),
      // `unknown command: policy frobnicate`, naming the whole verb typed, as before commander.
      outputError: (text, write) =>
        write(`deploy-sts: ${text.replace(/^error: /, '').replace(/^unknown command '([^']*)'/, (_, word: string) => `unknown command: ${[...fullName(command).split(' ').slice(1), word].join(' ')}`)}`),
    });
    command.showSuggestionAfterError(true);
    for (const sub of command.commands) configure(sub);
  };
  configure(program);
  return program;
}

/** Find the command a failed parse was about, for its usage line. */
function commandFor(program: Command, argv: string[]): Command {
  let command = program;
  for (const word of argv) {
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    command = sub;
  }
  return command;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  for (const warning of unknownVariableWarnings(env)) warn(warning);
  let code = 0;
  const ctx: CliContext = {
    env,
    async run(work) {
      code = await work();
    },
  };
  const program = buildProgram(ctx);
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    refuseSecretArguments(argv);
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    const command = commandFor(program, argv);
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      if (error.code === 'commander.help') {
        // A verb that has sub-verbs, typed alone (`deploy-sts policy`): its help lists them.
        return 2;
      }
      if (USAGE_ERRORS.has(error.code)) {
        process.stderr.write(usageLine(command));
        return 2;
      }
      return error.exitCode || 1;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`deploy-sts: ${error.message}\n${usageLine(command)}`);
      return 2;
    }
    // Anything else — a bad configuration (ConfigError), policies that do not load (PolicyLoadError), a failure — is
    // printed as its message, which names what is wrong and the fix: exit 1.
    process.stderr.write(`deploy-sts: ${(error as Error).message}\n`);
    return 1;
  }
}
