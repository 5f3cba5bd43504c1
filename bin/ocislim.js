#!/bin/sh
':' //; unset OCISLIM_DEFERRED_CA_CERTS; [ -z "$NODE_EXTRA_CA_CERTS" ] || { OCISLIM_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export OCISLIM_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; exec node "$0" "$@"
'use strict';
// Started as a program, this file is a shell script first (the line above; to JavaScript a string and a comment): it
// keeps NODE_EXTRA_CA_CERTS from Node, which on Node 20 parses that whole file at start, registry or not (45 ms of CPU
// for a system bundle; nodejs/node#40524), and runs itself with node. The variable is put back below, for the
// programs ocislim starts, and the registry client adds the file's certificates to Node's store at its first TLS
// connection (src/registry/extra-ca.ts, trust.ts). `node bin/ocislim.js` works too, with Node loading the file itself.
// Launcher. `npm install` compiles the TypeScript and bundles the CLI into one file (scripts/bundle.mjs); the bundle
// runs when it is current, else the compiled modules in dist/src do.
// CommonJS (bin/package.json says so): an ES module entry point brings up Node's ES loader, which reads the file
// through fs/promises (and so loads readline and the stream modules) before a line of ours runs, 10+ ms per start.
const { existsSync, readFileSync, statSync } = require('node:fs');
const { Module, createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

// libuv's thread pool runs the layers' deflate (4 threads unless told): one thread a core (at least 2), as many blocks
// as the layer writer deflates at once. More threads than cores time-slice with the main thread, which plans, reads
// and hashes meanwhile and is what a cold build waits for (README, Performance). libuv reads the variable once, when
// the pool starts: it is started here (one access(2) queued) and the variable taken away again, so that the programs
// this process starts (--trace's program, credential helpers, decompressors) see the environment the user gave. A
// size the user set stays.
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = String(Math.max(2, require('node:os').availableParallelism()));
  require('node:fs').access(__filename, () => {});
  delete process.env.UV_THREADPOOL_SIZE;
}

const deferredCa = process.env.OCISLIM_DEFERRED_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.OCISLIM_DEFERRED_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = deferredCa;
}

const dist = join(__dirname, '..', 'dist', 'src', 'cli') + '/';

/**
 * Whether this is a checkout (tsconfig.json beside package.json), where a `tsc -p .` rewrites dist/src behind the
 * bundle's back: there a source whose mtime changed is hashed, and the bundle runs only if it is the one bundled. An
 * installed package has no tsconfig.json and its files do not change, but npm extracts them with new mtimes: there a
 * source of the size recorded is taken as the one bundled, rather than hashing every source (and loading node:crypto)
 * at every start (+10 ms for --version).
 */
let checkout;
function inCheckout() {
  checkout ??= existsSync(join(__dirname, '..', 'tsconfig.json'));
  return checkout;
}

/**
 * A bundle's exports (ocislim: the CLI; ocislim-ldd: plain ldd command lines alone), or null when there is none or a source
 * changed after it was made.
 */
function bundled(name) {
  const file = join(dist, name + '.cjs');
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(file + '.inputs.json', 'utf8'));
    for (const [rel, mtime, size, sha1] of inputs) {
      // (concatenated, not path.join: 100 joins cost more than the 100 stats)
      const path = dist + rel;
      const st = statSync(path);
      if (st.size !== size) return null;
      if (st.mtimeMs !== mtime && inCheckout() && require('node:crypto').createHash('sha1').update(readFileSync(path)).digest('hex') !== sha1) return null;
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

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'ldd' && !process.env.OCISLIM_NO_BUNDLE) {
    // ldd without yargs and the rest of the CLI, when the command line is a plain one (else null: the CLI takes it).
    const ldd = bundled('ocislim-ldd');
    const code = ldd && ldd.runPlainLdd(argv);
    if (code !== null && code !== undefined) return ldd.exitWhenFlushed(code);
  }
  let cli = process.env.OCISLIM_NO_BUNDLE ? null : bundled('ocislim');
  if (!cli) {
    const entry = join(dist, 'main.js');
    if (!existsSync(entry)) {
      process.stderr.write('ocislim: not built yet; run "npm install" (or "npm run build") in the checkout first\n');
      process.exit(2);
    }
    cli = await import(require('node:url').pathToFileURL(entry).href);
  }
  if (deferredCa) {
    if (typeof cli.trustDeferredExtraCa !== 'function') {
      // dist/ older than this launcher (a pull without a rebuild): it would not trust the file the launcher kept from Node.
      process.stderr.write('ocislim: dist/ is older than bin/ocislim.js; run "npm run build" in the checkout\n');
      process.exit(2);
    }
    cli.trustDeferredExtraCa(deferredCa);
  }
  // Exits once stdout and stderr are flushed, without waiting for a registry's keep-alive socket to close.
  await cli.exitWhenFlushed(await cli.run(argv));
}
main();
