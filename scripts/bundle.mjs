#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, yargs and tar-stream included) into one
// CommonJS file, dist/src/cli/ocislim.cjs, and a V8 code cache beside it: start-up then reads and compiles one file
// instead of resolving ~100 ES modules. Native addons and undici (loaded on demand through require) stay outside.
// bin/ocislim.js uses the bundle only while it is current (see the .inputs.json it checks); the library (dist/src)
// is not affected. Run by `npm run build` and `prepare`, after tsc.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/src/cli/ocislim.cjs');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A production install (no devDependencies): the CLI runs unbundled.
  process.stderr.write('scripts/bundle.mjs: esbuild is not installed; the CLI will run unbundled\n');
  process.exit(0);
}
/**
 * string-width (yargs' help layout) builds Unicode property regular expressions and an Intl.Segmenter when loaded:
 * 15 ms of start-up in every run, help or not. Imports of it get a stand-in that loads the real module on its first
 * call (esbuild then wraps the real one for lazy initialisation).
 */
function lazyStringWidth() {
  return {
    name: 'lazy-string-width',
    setup(b) {
      b.onResolve({ filter: /^string-width$/ }, async (args) => {
        if (args.pluginData?.real) return undefined;
        const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: { real: true } });
        if (real.errors.length) return { errors: real.errors };
        return { path: real.path, namespace: 'lazy-string-width' };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
        contents: `export default function stringWidth(...a) { return require(${JSON.stringify(args.path)}).default(...a); }`,
        resolveDir: dirname(args.path),
        loader: 'js',
      }));
    },
  };
}

function writeAtomic(path, data) {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}

const result = await esbuild.build({
  entryPoints: [join(root, 'dist/src/cli/main.js')],
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
  plugins: [lazyStringWidth()],
  // The sources use import.meta.url to find package.json and node_modules: the bundle sits in the same directory as
  // main.js, so its own URL gives the same answers.
  define: { 'import.meta.url': '__ocislim_url' },
  banner: { js: "const __ocislim_url = require('node:url').pathToFileURL(__filename).href;" },
});
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
// The code cache: V8's compiled form of the bundle's top level, checked by V8 against its version and the source
// (a mismatch is ignored and the bundle compiles as usual).
const script = new vm.Script(Module.wrap(readFileSync(out, 'utf8')), { filename: out });
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, createRequire(out), mod, out, dirname(out));
writeAtomic(out + '.cache', script.createCachedData());
