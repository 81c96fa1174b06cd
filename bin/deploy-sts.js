#!/usr/bin/env node
// The `deploy-sts` command (package.json `bin`, `npm run deploy-sts`, `npm start`).
//
// Plain JavaScript that any Node.js able to run ES modules parses, on purpose: the CLI itself (TypeScript, built
// into build/) imports node:sqlite, which only Node.js 24 has, and an older Node would die on that import with a
// stack trace. This file checks the version first, says in one line what is wrong and how to fix it, and only
// then loads the real CLI, in this same process (so the PID printed by `serve` is the one to signal).
import { existsSync } from 'fs';

var NEEDED = 24;
var major = Number(process.versions.node.split('.')[0]);
if (!(major >= NEEDED)) {
  process.stderr.write(
    'deploy-sts: needs Node.js ' + NEEDED + ' or newer, but this is Node.js ' + process.version + ' (' + process.execPath + '); ' +
      'install Node.js ' + NEEDED + ' (https://nodejs.org/en/download, or `nvm install ' + NEEDED + '`) and run deploy-sts with it\n',
  );
  process.exit(1);
}

var cli = new URL('../build/exchange-service/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('deploy-sts: the CLI is not built yet (no build/exchange-service/cli.js): run `npm run build` in this clone, then try again\n');
  process.exit(1);
}

import(cli.href).then(
  function (module) {
    return module.main(process.argv.slice(2)).then(function (code) {
      process.exitCode = code;
    });
  },
  function (error) {
    process.stderr.write('deploy-sts: cannot load the CLI (' + (error && error.message ? error.message : String(error)) + '); reinstall deploy-sts\n');
    process.exit(1);
  },
);
