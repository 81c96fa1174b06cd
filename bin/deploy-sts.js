#!/usr/bin/env node
// The `deploy-sts` command (package.json `bin`, `npm run deploy-sts`, `npm start`).
//
// Plain JavaScript that any Node.js able to run ES modules parses, on purpose: the CLI itself (TypeScript, built
// into build/) imports node:sqlite, which only Node.js 24 has, and an older Node would die on that import with a
// stack trace. This file checks the version first, says in one line what is wrong and how to fix it, and only
// then loads the real CLI, in this same process (so the PID printed by `serve` is the one to signal).
import { existsSync, lstatSync, mkdirSync } from 'fs';
import nodeModule from 'module';
import { tmpdir } from 'os';
import { join } from 'path';

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

// Start-up: V8's compile cache (node:module), as npm and tsc use it, keeps the bytecode of the modules compiled on
// the first run and skips most of that work on the next (about 35 ms of the yaml parser's loading alone). Never in a
// directory another user could have prepared: Node's default, os.tmpdir()/node-compile-cache, may be created by anyone
// on a shared machine, and a planted cache entry is code this process would run. So the cache goes in a directory this
// user owns and only this user can write (created 0700 in the temp directory, checked after), or nowhere; where
// NODE_COMPILE_CACHE is set, Node has already enabled it there; NODE_DISABLE_COMPILE_CACHE=1 turns it off. A cache
// that cannot be used changes nothing but the speed: every failure here is ignored.
function privateCompileCacheDir() {
  // Windows: the temp directory is the user's own, and so is Node's default in it.
  if (typeof process.getuid !== 'function') return join(tmpdir(), 'node-compile-cache');
  var dir = join(tmpdir(), 'deploy-sts-compile-cache-' + process.getuid());
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (!error || error.code !== 'EEXIST') return undefined;
  }
  var info = lstatSync(dir);
  return info.isDirectory() && info.uid === process.getuid() && (info.mode & 0o022) === 0 ? dir : undefined;
}
try {
  if (typeof nodeModule.enableCompileCache === 'function' && !process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
    var cacheDir = privateCompileCacheDir();
    if (cacheDir) nodeModule.enableCompileCache(cacheDir);
  }
} catch (error) {
  // no cache: a slower start, the same behaviour
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
