import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { removeDir, run, tempDir } from './helpers/sh.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
before(() => (dir = tempDir('ocislim-package-')));
after(() => removeDir(dir));

function ok(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = run(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: 300000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
  return r;
}

describe('the npm package', () => {
  it('npm pack, then npm install -g of the tarball into a prefix: no install-script warning, the CLI builds an image, the library imports with types', () => {
    // A copy of the checkout, so that packing (which builds) never rewrites the dist/ the other tests run from.
    const src = join(dir, 'checkout');
    mkdirSync(src);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'LICENSE', 'bin', 'src', 'scripts']) cpSync(join(REPO, f), join(src, f), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'));
    const manifest = readFileSync(join(src, 'package.json'), 'utf8');
    ok('npm', ['pack', '--pack-destination', dir], src);
    assert.equal(readFileSync(join(src, 'package.json'), 'utf8'), manifest, 'package.json is restored after packing');
    assert.ok(!existsSync(join(src, '.package.json.prepack')));

    const tgz = join(dir, `ocislim-${JSON.parse(manifest).version}.tgz`);
    const files = ok('tar', ['tzf', tgz], dir).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    for (const f of ['LICENSE', 'README.md', 'package.json', 'bin/ocislim.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js']) assert.ok(files.includes(f), `${f} is shipped`);
    assert.ok(!files.some((f) => /^(test|bench|dist\/test|dist\/bench)\//.test(f)), 'no tests or benchmarks');
    assert.match(readFileSync(join(REPO, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
    // Every source map points at sources that are in the package.
    const maps = files.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 50);
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    ok('tar', ['xzf', tgz, '-C', unpacked], dir);
    for (const m of maps) {
      const map = JSON.parse(readFileSync(join(unpacked, 'package', m), 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const s of map.sources) {
        const target = posix.normalize(posix.join(posix.dirname(m), map.sourceRoot ?? '', s));
        assert.ok(files.includes(target), `${m} points at ${target}, which is not shipped`);
      }
    }
    const shipped = JSON.parse(readFileSync(join(unpacked, 'package/package.json'), 'utf8'));
    assert.equal(shipped.scripts.prepare, undefined, 'consumers get no install script to approve');
    assert.ok(files.includes(shipped.types.replace(/^\.\//, '')));

    // Installed as a user would (dependencies from the npm cache that `npm ci` filled).
    const prefix = join(dir, 'prefix');
    const inst = ok('npm', ['install', '-g', '--prefix', prefix, tgz, '--no-audit', '--no-fund', '--prefer-offline'], dir);
    assert.doesNotMatch(inst.stdout + inst.stderr, /install-scripts|allowScripts|npm warn/i);
    const bin = join(prefix, 'bin', 'ocislim');
    assert.equal(ok(bin, ['--version'], dir).stdout.trim(), JSON.parse(manifest).version);
    const built = ok(bin, ['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'redis')}`], dir);
    assert.match(built.stdout, /^sha256:[0-9a-f]{64}\n$/);
    ok('oci-image-tool', ['validate', '--type', 'image', join(dir, 'redis')], dir);

    // The library, from a project beside the global install: import('ocislim') and its declarations.
    const proj = join(prefix, 'lib', 'use');
    mkdirSync(proj);
    writeFileSync(join(proj, 'package.json'), '{"type":"module"}');
    writeFileSync(join(proj, 'use.ts'), "import { parseImageRef, type ImageRef } from 'ocislim';\nconst r: ImageRef = parseImageRef('oci:x');\nconsole.log(r.kind);\n");
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, skipLibCheck: true, types: [], outDir: 'out' } }));
    ok(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', proj], proj, { NODE_PATH: '' });
    assert.equal(ok(process.execPath, [join(proj, 'out/use.js')], proj).stdout, 'oci\n');
  });
});
