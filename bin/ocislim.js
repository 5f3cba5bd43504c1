#!/usr/bin/env node
// Launcher. `npm install` compiles the TypeScript and bundles the CLI into one file (scripts/bundle.mjs); the bundle
// runs when it is current, else the compiled modules in dist/src do.
// Built-ins come through require: an ES import of node:fs builds its ES module facade, which reads every lazy getter
// of fs and so loads node:stream (25 ms of start-up).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { existsSync, readFileSync, statSync } = require('node:fs');
const { Module } = require('node:module');
const { dirname, join } = require('node:path');
const { fileURLToPath } = require('node:url');
const vm = require('node:vm');

const dist = fileURLToPath(new URL('../dist/src/cli/', import.meta.url));

/** The bundle's exports, or null when there is none or a source changed after it was made. */
function bundled() {
  const file = join(dist, 'ocislim.cjs');
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(file + '.inputs.json', 'utf8'));
    for (const [rel, mtime, size, sha1] of inputs) {
      const path = join(dist, rel);
      const st = statSync(path);
      if (st.size !== size) return null;
      if (st.mtimeMs !== mtime && require('node:crypto').createHash('sha1').update(readFileSync(path)).digest('hex') !== sha1) return null;
    }
  } catch {
    return null;
  }
  let cachedData;
  try {
    cachedData = readFileSync(file + '.cache');
  } catch {
    /* compiles without */
  }
  const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  return mod.exports;
}

let cli = process.env.OCISLIM_NO_BUNDLE ? null : bundled();
if (!cli) {
  const main = join(dist, 'main.js');
  if (!existsSync(main)) {
    process.stderr.write('ocislim: not built yet; run "npm install" (or "npm run build") in the checkout first\n');
    process.exit(2);
  }
  cli = await import(new URL(`file://${main}`).href);
}
// Exits once stdout and stderr are flushed, without waiting for a registry's keep-alive socket to close.
await cli.exitWhenFlushed(await cli.run(process.argv.slice(2)));
