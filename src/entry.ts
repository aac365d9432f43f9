#!/usr/bin/env node
// The program's entry point in the bundle (dist/cli.js). The bundle keeps source maps beside it,
// but Node only reads them for modules loaded after they are turned on, and reading them on every
// run cost ~170 ms of a 380 ms idle check. So they are turned on only when -v asks for the stack
// traces that name src/*.ts lines (or when NODE_OPTIONS has --enable-source-maps).
const verboseFlag = /^(--verbose|-[a-zA-Z]*v[a-zA-Z]*)$/;
if (process.argv.slice(2).some((argument) => verboseFlag.test(argument))) process.setSourceMapsEnabled(true);
await import('./cli.js');
