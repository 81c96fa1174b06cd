#!/usr/bin/env node
/**
 * `deploy-sts` — the command line: serve, policy check|explain, tokens list|revoke, audit, keys rotate, dev token.
 * The verbs are in cli/ (one file per group, each calling the module that does the work); bin/deploy-sts.js checks
 * the Node.js version and then calls `main` here.
 */
import { main } from './cli/program.js';

export { main };

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
