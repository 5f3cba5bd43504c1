import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { has, removeDir, run, tempDir } from './helpers/sh.js';
import { startRegistry } from './helpers/registry.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let dir: string;
before(() => {
  dir = tempDir('ocislim-bundle-');
  // A copy of the built package (bin, dist, package.json, node_modules linked), bundled afresh, so this test never
  // changes the checkout's dist/ under other tests.
  for (const p of ['bin', 'dist', 'package.json', 'scripts']) cpSync(join(repo, p), join(dir, p), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  const b = run(process.execPath, [join(dir, 'scripts', 'bundle.mjs')]);
  assert.equal(b.status, 0, b.stderr);
});
after(() => removeDir(dir));

/** Which of the CLI's files a run opens (strace), and its result. */
function opened(args: string[]): { status: number | null; stdout: string; files: string } {
  const log = join(dir, 'strace.log');
  const r = run('strace', ['-f', '-e', 'trace=openat', '-o', log, process.execPath, join(dir, 'bin', 'ocislim.js'), ...args]);
  return { status: r.status, stdout: r.stdout, files: run('cat', [log]).stdout };
}

describe('bundled CLI', { skip: !has('strace') && 'strace is not installed' }, () => {
  it('runs from the one-file bundle, with its code cache, without loading the compiled modules', () => {
    const r = opened(['ldd', '/bin/true', '--library-path', '/nonexistent']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /libc\.so\.6 => /);
    assert.match(r.files, /dist\/src\/cli\/ocislim\.cjs"/);
    assert.match(r.files, /ocislim\.cjs\.cache"/);
    assert.doesNotMatch(r.files, /dist\/src\/cli\/main\.js"/);
    assert.doesNotMatch(r.files, /node_modules\/yargs/);
  });

  it('a plain ldd command line runs from the ldd bundle alone (no yargs, not the CLI bundle); any other goes to the CLI', () => {
    for (const args of [['ldd', '/bin/true'], ['ldd', '--tree', '/bin/true', '/bin/sh'], ['ldd', '--root=/', '--json', '-q', '/bin/true']]) {
      const r = opened(args);
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.files, /ocislim-ldd\.cjs\.cache"/, args.join(' '));
      assert.doesNotMatch(r.files, /ocislim\.cjs"/, args.join(' '));
    }
    for (const args of [['ldd', '--help'], ['ldd', '/bin/true', '--library-path', '/lib'], ['ldd', '--json', 'true', '/bin/true'], ['ldd', '--', '/bin/true']]) {
      const r = opened(args);
      assert.match(r.files, /dist\/src\/cli\/ocislim\.cjs"/, args.join(' '));
    }
  });

  it('ldd answers the same through its own bundle as through the CLI (yargs): output, errors and exit status', () => {
    const bin = join(dir, 'bin', 'ocislim.js');
    const cases = [
      ['ldd', '/bin/true'],
      ['ldd', '/bin/true', '/usr/bin/ls', '/etc/passwd', '/nonexistent'],
      ['ldd', '--tree', '/usr/bin/ls'],
      ['ldd', '--json', '/bin/true', '/bin/sh'],
      ['ldd', '--json', '/etc'],
      ['ldd', '--root', '/nonexistent-root', '/bin/true'],
      ['ldd', '--root=/', '--debug', '--quiet', '/usr/bin/ls'],
      ['ldd', '-q', '--root', '/', '/bin/true', '--tree'],
    ];
    for (const args of cases) {
      const fast = run(process.execPath, [bin, ...args]);
      const cli = run(process.execPath, [bin, ...args], { env: { OCISLIM_NO_BUNDLE: '1' } });
      assert.deepEqual(fast, cli, args.join(' '));
    }
  });

  it('--help lays out the same text from the bundle (string-width answered for ASCII without loading it) as unbundled', () => {
    const bin = join(dir, 'bin', 'ocislim.js');
    for (const args of [['--help'], ['build', '--help'], ['ldd', '--help']]) {
      const bundled = run(process.execPath, [bin, ...args]);
      const plain = run(process.execPath, [bin, ...args], { env: { OCISLIM_NO_BUNDLE: '1' } });
      assert.equal(bundled.status, 0, args.join(' '));
      assert.deepEqual(bundled, plain, args.join(' '));
    }
  });

  it('the bundles are ASCII (one other character makes V8 hold, decode and hash the whole source as two-byte text at every start)', () => {
    for (const name of ['ocislim.cjs', 'ocislim-ldd.cjs']) {
      const text = readFileSync(join(dir, 'dist', 'src', 'cli', name), 'latin1');
      assert.doesNotMatch(text, /[^\x00-\x7f]/, name);
    }
  });

  it('a build from the bundle does not load node:child_process (only a build that starts a process does: --trace, a compressed archive)', () => {
    const hook = join(dir, 'modules-hook.cjs');
    writeFileSync(hook, "process.on('exit', () => require('node:fs').writeSync(2, '\\nMODULES ' + process.moduleLoadList.filter((m) => /child_process/.test(m)).join(',') + '\\n'));\n");
    const r = run(process.execPath, ['--require', hook, join(dir, 'bin', 'ocislim.js'), 'build', '/bin/true', '-o', `oci:${join(dir, 'child-process-image')}`], { env: { OCISLIM_CACHE: join(dir, 'child-process-cache') } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /\nMODULES \n/, r.stderr);
    // (the hook does see it when it is loaded)
    const loaded = run(process.execPath, ['--require', hook, '-e', "require('node:child_process')"]);
    assert.match(loaded.stderr, /\nMODULES .*child_process/);
  });

  it("libuv's thread pool gets one thread a core (at least 2) unless UV_THREADPOOL_SIZE is set, and the programs it starts see the user's environment", () => {
    // The hook reports, at exit, the variable as the process holds it (what a program it starts would inherit) and its
    // thread count, libuv's pool threads among them (it queues an access(2) first: the pool starts then, if it had not).
    const hook = join(dir, 'pool-hook.cjs');
    writeFileSync(hook, "process.on('exit', () => { const fs = require('node:fs'); fs.access('.', () => {}); fs.writeSync(2, '\\nPOOL ' + process.env.UV_THREADPOOL_SIZE + ' THREADS ' + fs.readdirSync('/proc/self/task').length + '\\n'); });\n");
    const cores = Math.max(2, availableParallelism());
    const pool = (size?: string) => {
      const env = { ...process.env };
      delete env.UV_THREADPOOL_SIZE;
      if (size !== undefined) env.UV_THREADPOOL_SIZE = size;
      const r = spawnSync(process.execPath, ['--require', hook, join(dir, 'bin', 'ocislim.js'), '--version'], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const m = /\nPOOL (\S+) THREADS (\d+)\n/.exec(r.stderr);
      assert.ok(m, r.stderr);
      return { env: m[1], threads: Number(m[2]) };
    };
    const unset = pool();
    const asCores = pool(String(cores));
    const more = pool(String(cores + 3));
    // Unset: the pool has a thread a core, as when the user asks for that many; the variable is not passed on.
    assert.equal(unset.threads, asCores.threads);
    assert.equal(more.threads, asCores.threads + 3);
    assert.equal(unset.env, 'undefined');
    // A size the user set is kept, and passed on as given.
    assert.equal(asCores.env, String(cores));
    assert.equal(more.env, String(cores + 3));
  });

  it('started as a program, bin keeps NODE_EXTRA_CA_CERTS from Node\'s start and passes it on to the programs it starts', () => {
    // Node 20 reads the file at start: a file it cannot read gets its warning. The hook reports, at exit, what a
    // program ocislim starts would inherit.
    const hook = join(dir, 'ca-hook.cjs');
    writeFileSync(hook, "process.on('exit', () => require('node:fs').writeSync(2, '\\nCA ' + process.env.NODE_EXTRA_CA_CERTS + ' ' + process.env.OCISLIM_DEFERRED_CA_CERTS + '\\n'));\n");
    const ca = join(dir, 'no-such-ca.pem');
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: ca, NODE_OPTIONS: `--require ${hook}` };
    const direct = spawnSync(join(dir, 'bin', 'ocislim.js'), ['--version'], { env, encoding: 'utf8' });
    assert.equal(direct.status, 0, direct.stderr);
    assert.equal(direct.stdout.trim(), JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version);
    assert.doesNotMatch(direct.stderr, /Ignoring extra certs/);
    assert.match(direct.stderr, new RegExp(`\\nCA ${ca} undefined\\n`));
    // Through node, Node reads it itself (the warning); the environment passed on is the same.
    const viaNode = spawnSync(process.execPath, [join(dir, 'bin', 'ocislim.js'), '--version'], { env, encoding: 'utf8' });
    assert.equal(viaNode.status, 0, viaNode.stderr);
    assert.match(viaNode.stderr, /Ignoring extra certs from `.*no-such-ca\.pem`/);
    assert.match(viaNode.stderr, new RegExp(`\\nCA ${ca} undefined\\n`));
    // Arguments reach the CLI as given (spaces, quotes, a glob, a variable, a newline, empty values), and its exit code
    // comes back.
    const labels = ["a=x y'z \"q\" * $HOME", 'b=', 'c=line1\nline2'];
    const out = join(dir, 'args-image');
    const built = spawnSync(join(dir, 'bin', 'ocislim.js'), ['build', '/usr/bin/true', ...labels.flatMap((l) => ['--label', l]), '--env', 'E=', '-o', `oci:${out}`], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    const blob = (d: string) => JSON.parse(readFileSync(join(out, 'blobs', ...d.split(':')), 'utf8'));
    const config = blob(blob(index.manifests[0].digest).config.digest).config;
    assert.deepEqual(config.Labels, { a: "x y'z \"q\" * $HOME", b: '', c: 'line1\nline2' });
    assert.ok(config.Env.includes('E='));
    const usage = spawnSync(join(dir, 'bin', 'ocislim.js'), ['build', '--no-such-flag'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, encoding: 'utf8' });
    assert.equal(usage.status, 2, usage.stderr);
  });

  it('a push over plain http loads neither node:http2, node:http nor node:assert (stand-ins in the undici bundle), nor node:tls (loaded at a first TLS connection)', async () => {
    const hook = join(dir, 'tls-hook.cjs');
    writeFileSync(hook, "process.on('exit', () => require('node:fs').writeSync(2, '\\nMODULES ' + process.moduleLoadList.filter((m) => /^NativeModule (tls|http2|http|assert)$/.test(m)).join(',') + '\\n'));\n");
    const reg = await startRegistry(join(dir, 'plain-registry'));
    try {
      const r = run(process.execPath, ['--require', hook, join(dir, 'bin', 'ocislim.js'), 'build', '/bin/true', '--push', `${reg.host}/plain:1`], { env: { OCISLIM_CACHE: join(dir, 'plain-cache') } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${reg.host}/plain@sha256:`));
      assert.match(r.stderr, /\nMODULES \n/, r.stderr);
    } finally {
      await reg.stop();
    }
    // (the hook does see them when they are loaded)
    const all = run(process.execPath, ['--require', hook, '-e', "require('node:http2'); require('node:assert')"]).stderr;
    for (const m of ['tls', 'http2', 'http', 'assert']) assert.match(all, new RegExp(`\\nMODULES .*\\b${m}\\b`), m);
  });

  it("V8 accepts the code cache (one made after a flag change, e.g. ldd's JIT setting, would be refused in every run)", () => {
    const file = join(dir, 'dist', 'src', 'cli', 'ocislim.cjs');
    const check = `const vm = require('node:vm'); const { Module } = require('node:module'); const fs = require('node:fs');
      const s = new vm.Script(Module.wrap(fs.readFileSync(${JSON.stringify(file)}, 'utf8')), { filename: ${JSON.stringify(file)}, cachedData: fs.readFileSync(${JSON.stringify(file + '.cache')}) });
      process.stdout.write(String(s.cachedDataRejected));`;
    const r = run(process.execPath, ['-e', check]);
    assert.equal(r.stdout, 'false', r.stderr);
  });

  it("a registry command loads undici from its own bundle (dist/src/undici.cjs) with a code cache V8 accepts", () => {
    // (nothing listens on port 1: the command fails after loading the transport)
    const r = opened(['pull', '--insecure', '127.0.0.1:1/x:y', '-o', `oci:${join(dir, 'never')}`]);
    assert.notEqual(r.status, 0);
    assert.match(r.files, /dist\/src\/undici\.cjs"/);
    assert.match(r.files, /dist\/src\/undici\.cjs\.cache"/);
    assert.doesNotMatch(r.files, /node_modules\/undici\/lib/, 'not its ~100 modules one by one');
    const file = join(dir, 'dist', 'src', 'undici.cjs');
    // (as the transport loads it: after --liftoff-only; V8 refuses a cache made under other flags)
    const check = `require('node:v8').setFlagsFromString('--liftoff-only'); const vm = require('node:vm'); const { Module } = require('node:module'); const fs = require('node:fs');
      const s = new vm.Script(Module.wrap(fs.readFileSync(${JSON.stringify(file)}, 'utf8')), { filename: ${JSON.stringify(file)}, cachedData: fs.readFileSync(${JSON.stringify(file + '.cache')}) });
      process.stdout.write(String(s.cachedDataRejected));`;
    assert.equal(run(process.execPath, ['-e', check]).stdout, 'false');
  });

  it('a source edited to the same size: a checkout (tsconfig.json) hashes it and drops the bundle; an installed package does not', () => {
    const entry = join(dir, 'dist', 'src', 'cli', 'ldd-entry.js');
    const text = readFileSync(entry, 'utf8');
    assert.ok(text.includes('plain forms'));
    writeFileSync(entry, text.replace('plain forms', 'plain FORMS'));
    const tsconfig = join(dir, 'tsconfig.json');
    writeFileSync(tsconfig, '{}');
    try {
      const r = opened(['ldd', '/bin/true']);
      assert.equal(r.status, 0);
      assert.doesNotMatch(r.files, /ocislim-ldd\.cjs\.cache"/, 'the checkout hashed the edited source');
    } finally {
      rmSync(tsconfig);
    }
    // Installed (no tsconfig.json): npm gives every file a new mtime, so a source of the size bundled is trusted.
    assert.match(opened(['ldd', '/bin/true']).files, /ocislim-ldd\.cjs\.cache"/);
    writeFileSync(entry, text);
  });

  it('a touched source (npm pack resets mtimes) keeps the bundle; a changed one falls back to dist/src', () => {
    const main = join(dir, 'dist', 'src', 'cli', 'main.js');
    utimesSync(main, new Date(499162860000), new Date(499162860000));
    // (the unbundled CLI loads yargs from node_modules for --help; the bundle holds it)
    assert.doesNotMatch(opened(['--help']).files, /node_modules\/yargs/);
    appendFileSync(main, '\n// edited after bundling\n');
    const r = opened(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.files, /node_modules\/yargs/, 'the stale bundle is not used');
  });
});
