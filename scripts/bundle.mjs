#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, yargs and tar-stream included) into one
// CommonJS file, dist/src/cli/ocislim.cjs, and a V8 code cache beside it (and ldd alone, for plain `ocislim ldd`
// command lines, into ocislim-ldd.cjs): start-up then reads and compiles one file
// instead of resolving ~100 ES modules. Native addons and undici (loaded on demand through require) stay outside.
// bin/ocislim.js uses the bundle only while it is current (see the .inputs.json it checks); the library (dist/src)
// is not affected. Run by `npm run build` and `prepare`, after tsc.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire, Module } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install (no devDependencies): the CLI runs unbundled.
  process.stderr.write('scripts/bundle.mjs: esbuild is not installed; the CLI will run unbundled\n');
  process.exit(0);
}
/**
 * Modules whose load-time work every run would pay for output it rarely prints: string-width (yargs' help layout)
 * builds Unicode property regular expressions and an Intl.Segmenter (15 ms), cliui (help layout) builds ansi-styles'
 * colour tables. Imports of them get a stand-in that loads the real module on its first call (esbuild then wraps the
 * real one for lazy initialisation). Both are used only through their default export, a function.
 */
function lazyModules(names) {
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
  return {
    name: 'lazy-modules',
    setup(b) {
      b.onResolve({ filter }, async (args) => {
        if (args.pluginData?.real) return undefined;
        const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: { real: true } });
        if (real.errors.length) return { errors: real.errors };
        return { path: real.path, namespace: 'lazy-module', pluginData: { name: args.path } };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-module' }, (args) => ({
        contents:
          args.pluginData?.name === 'string-width'
            ? // Printable ASCII is one column a character to every version of string-width, and yargs' help is ASCII:
              // --help then lays out its text without loading any of the three string-widths yargs, cliui and wrap-ansi
              // bring (their Unicode property regular expressions and segmenters were 60 ms of --help's CPU).
              `export default function lazy(s, ...a) { return typeof s === 'string' && /^[\\x20-\\x7e]*$/.test(s) ? s.length : require(${JSON.stringify(args.path)}).default(s, ...a); }`
            : `export default function lazy(...a) { return require(${JSON.stringify(args.path)}).default(...a); }`,
        resolveDir: dirname(args.path),
        loader: 'js',
      }));
    },
  };
}

/**
 * yargs imports strictEqual and notStrictEqual from node:assert to check its own arguments; loading node:assert
 * loads its error classes, colour support and process.stderr (5-10 ms of start-up). Its imports get two plain checks.
 */
function plainAssert() {
  return {
    name: 'plain-assert',
    setup(b) {
      b.onResolve({ filter: /^(node:)?assert$/ }, (args) => (/[\\/]node_modules[\\/]yargs[\\/]/.test(args.importer) ? { path: 'assert', namespace: 'plain-assert' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'plain-assert' }, () => ({
        contents: [
          'export function strictEqual(a, b, message) { if (a !== b) throw new Error(message ?? `Expected ${String(a)} to be ${String(b)}`); }',
          'export function notStrictEqual(a, b, message) { if (a === b) throw new Error(message ?? `Expected a value other than ${String(b)}`); }',
        ].join('\n'),
        loader: 'js',
      }));
    },
  };
}

function writeAtomic(path, data) {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}

/**
 * Bundles `entry` (compiled, under dist/src/cli) into dist/src/cli/NAME.cjs, with the list of its inputs and a V8 code
 * cache made after the functions `warmUp(exports)` gives ran in this process.
 */
async function bundle(entry, name, warmUp) {
  const out = join(root, 'dist/src/cli', name + '.cjs');
  const result = await esbuild.build({
    entryPoints: [join(root, 'dist/src/cli', entry)],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: process.env.NOMIN ? false : true,
    outfile: out + '.tmp',
    metafile: true,
    logLevel: 'warning',
    external: ['@napi-rs/xattr', 'undici', '@mongodb-js/zstd'],
    // Keep /v regular expression literals (Node 20 has them) rather than the `new RegExp` esbuild would write.
    supported: { 'regexp-set-notation': true },
    plugins: [lazyModules(['string-width', 'cliui']), plainAssert()],
    // The sources use import.meta.url to find package.json and node_modules: the bundle sits in the same directory as
    // main.js, so its own URL gives the same answers.
    define: { 'import.meta.url': '__ocislim_url' },
    banner: { js: "const __ocislim_url = require('node:url').pathToFileURL(__filename).href;" },
  });
  // One character outside ASCII (esbuild escapes those of strings, not of regular expression literals) makes V8 hold the
  // whole source as a two-byte string: decoded, flattened and hashed at twice the size at every start.
  const nonAscii = readFileSync(out + '.tmp', 'latin1').match(/[^\x00-\x7f].{0,40}/);
  if (nonAscii && !process.env.NOMIN) process.stderr.write(`scripts/bundle.mjs: ${name}.cjs is not ASCII (escape it in the source: ${JSON.stringify(nonAscii[0])}); every start decodes it slower\n`);
  renameSync(out + '.tmp', out);
  // What the bundle was made from: bin/ocislim.js falls back to dist/src when any of these changed since (a `tsc -p .`
  // without a re-bundle), so a stale bundle never runs. mtime and size first; the content hash settles a changed mtime
  // (npm pack resets every mtime).
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => join(process.cwd(), p))
    .filter((p) => p.startsWith(join(root, 'dist')))
    .map((p) => {
      const st = statSync(p);
      return [relative(dirname(out), p), st.mtimeMs, st.size, createHash('sha1').update(readFileSync(p)).digest('hex')];
    });
  writeAtomic(out + '.inputs.json', JSON.stringify(inputs));
  // The code cache: V8's compiled form of the bundle's functions, checked by V8 against its version and the source
  // (a mismatch is ignored and the bundle compiles as usual). It holds what has been compiled when it is made: the top
  // level, plus what a few quiet runs compile (argument parsing, --version, ldd), which every start would otherwise
  // compile from source again.
  const script = new vm.Script(Module.wrap(readFileSync(out, 'utf8')), { filename: out });
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(out), mod, out, dirname(out));
  await quietly(warmUp(mod.exports));
  writeAtomic(out + '.cache', script.createCachedData());
}

// The whole CLI, and plain ldd command lines alone (bin/ocislim.js tries that one first for `ldd`: no yargs).
// (the CLI's ldd runs only for command lines the ldd bundle leaves to it, as this one: their reading, plain-args.ts,
// is every command's) A build too (to a scratch layout, with a scratch cache): the plan, the package database, the
// rules, the layer writer and the layout are then compiled in the cache, not from source in every build. None of
// these goes through yargs, which is left out of the cache (a fifth of it): only help and lines plain-args.ts leaves
// to it load and compile yargs.
await bundle('main.js', 'ocislim', (cli) => {
  const scratch = mkdtempSync(join(tmpdir(), 'ocislim-bundle-'));
  const build = ['build', '/bin/true', '-o', `oci:${join(scratch, 'image')}`];
  return [['--version'], ['ldd', '/bin/true', '--library-path', '/nonexistent'], build].map((argv) => async () => {
    const cache = process.env.OCISLIM_CACHE;
    process.env.OCISLIM_CACHE = join(scratch, 'cache');
    try {
      await cli.run(argv);
    } finally {
      if (cache === undefined) delete process.env.OCISLIM_CACHE;
      else process.env.OCISLIM_CACHE = cache;
      if (argv === build) rmSync(scratch, { recursive: true, force: true });
    }
  });
});
await bundle('ldd-entry.js', 'ocislim-ldd', (ldd) =>
  [
    ['ldd', '/bin/true'],
    // (several files, a not-ELF file, a missing one and a directory: what a run over a whole directory meets)
    ['ldd', '/bin/true', '/bin/sh', '/usr/bin/ls', '/etc/passwd', '/nonexistent', '/usr/bin'],
    ['ldd', '--json', '/bin/true'],
    ['ldd', '--tree', '/bin/true'],
  ].map((argv) => () => {
    if (ldd.runPlainLdd(argv) === null) throw new Error(`scripts/bundle.mjs: ${argv.join(' ')} is not a plain ldd command line`);
  }),
);
// Last: it sets a V8 flag, and V8 refuses a code cache made after a flag change in any process without that change.
await bundleUndici();

/** Runs each of `fns` with output discarded and process.exit() turned into an exception (which ends that one). */
async function quietly(fns) {
  const saved = { out: process.stdout.write, err: process.stderr.write, exit: process.exit, exitCode: process.exitCode };
  const exited = new Error('exit');
  process.stdout.write = process.stderr.write = () => true;
  // ldd would hold V8's optimizing compiler back, and any flag change makes V8 refuse the code cache made here.
  process.env.OCISLIM_KEEP_V8_FLAGS = '1';
  process.exit = () => {
    throw exited;
  };
  try {
    for (const f of fns) {
      try {
        await f();
      } catch (e) {
        if (e !== exited) throw e;
      }
    }
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.exit = saved.exit;
    process.exitCode = saved.exitCode;
    delete process.env.OCISLIM_KEEP_V8_FLAGS;
  }
}

/**
 * Built-in modules that undici's bundle gets a stand-in for, each one undici itself allows for:
 * - node:http2: undici's own fallback for a runtime without it ({ constants: {} }): the transport never offers
 *   HTTP/2 (allowH2 stays off, ALPN offers http/1.1 alone), and loading node:http2 brings node:tls, fs/promises and
 *   readline with it. Loading the bundle alone took 34 ms of CPU with it and 17.5 without; node:tls is now loaded at
 *   the first TLS connection (src/registry/trust.ts), not by every registry command.
 * - node:http: read for two things: http.maxHeaderSize, the default of an Agent's maxHeaderSize (Node's default,
 *   16 KiB, stands in; the transport passes that value itself), and IncomingMessage, which undici compares a request
 *   body's class with (absent here: the transport's bodies are buffers and streams of its own). Loading it loads
 *   Node's whole HTTP client and server.
 * - node:assert: undici calls assert(value) on its own state only; a plain check stands in, without node:assert's
 *   error classes and colour support.
 * A push to a plain-http registry loaded 5 ms of built-in modules less (tested: none of the three is loaded).
 */
function undiciStandIns() {
  const standIns = {
    http2: 'module.exports = { constants: {} };',
    http: 'module.exports = { maxHeaderSize: 16 * 1024 };',
    assert: [
      "function assert(value, message) { if (!value) throw Object.assign(new Error(message ?? 'undici: assertion failed'), { code: 'ERR_ASSERTION' }); }",
      'assert.ok = assert;',
      'module.exports = assert;',
    ].join('\n'),
  };
  return {
    name: 'undici-stand-ins',
    setup(b) {
      b.onResolve({ filter: /^(node:)?(http2|http|assert)$/ }, (args) => ({ path: args.path.replace(/^node:/, ''), namespace: 'undici-stand-in' }));
      b.onLoad({ filter: /.*/, namespace: 'undici-stand-in' }, (args) => ({ contents: standIns[args.path], loader: 'js' }));
    },
  };
}

/**
 * The parts of undici the registry transport loads (src/registry/transport.ts: the Agent, its request API and the
 * connector), as one file with its own code cache: dist/src/undici.cjs. Made from the undici installed now; the
 * transport uses it only while that version is the one installed. Its cache is made after a real request to a local
 * server (so the request path is compiled too) and with --liftoff-only set, as the transport sets it before loading
 * undici: V8 refuses a cache made under other flags.
 */
async function bundleUndici() {
  const file = join(root, 'dist/src/undici.cjs');
  const require = createRequire(join(root, 'package.json'));
  await esbuild.build({
    stdin: {
      contents: [
        "const Agent = require('undici/lib/dispatcher/agent.js');",
        "const dispatcher = require('undici/lib/dispatcher/dispatcher.js');",
        "if (!('request' in dispatcher.prototype)) Object.assign(dispatcher.prototype, require('undici/lib/api/index.js'));",
        "const buildConnector = require('undici/lib/core/connect.js');",
        'module.exports = { Agent, buildConnector };',
      ].join('\n'),
      resolveDir: root,
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    outfile: file + '.tmp',
    logLevel: 'warning',
    plugins: [undiciStandIns()],
  });
  renameSync(file + '.tmp', file);
  (await import('node:v8')).setFlagsFromString('--liftoff-only');
  const undici = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file });
  const m = { exports: {} };
  undici.runInThisContext().call(m.exports, m.exports, createRequire(file), m, file, dirname(file));
  const http = await import('node:http');
  const server = http.createServer((req, res) => res.end('ok'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new m.exports.Agent();
  try {
    const r = await agent.request({ origin: `http://127.0.0.1:${server.address().port}`, path: '/', method: 'GET' });
    await r.body.text();
  } finally {
    await agent.close();
    server.close();
  }
  writeAtomic(file + '.cache', undici.createCachedData());
  writeAtomic(file + '.json', JSON.stringify({ version: require('undici/package.json').version }));
}
