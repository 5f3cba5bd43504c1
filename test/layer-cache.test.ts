import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, ocislim, ocislimAsync } from './helpers/cli.js';
import { startProxy } from './helpers/proxy.js';
import { startRegistry } from './helpers/registry.js';
import { rng } from './helpers/rng.js';
import { removeDir, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-cache-');
});
after(() => removeDir(dir));

function build(args: string[], cache: string | null): { digest: string; stderr: string } {
  const r = ocislim(['build', ...args, ...(cache ? [] : ['--no-cache'])], { env: cache ? { OCISLIM_CACHE: cache } : {} });
  assert.equal(r.status, 0, `ocislim build ${args.join(' ')}: ${r.stderr}`);
  return { digest: r.stdout.trim(), stderr: r.stderr };
}

/** Every file of a layout, path → bytes, for byte-for-byte comparison. */
function tree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      if (n.isDirectory()) walk(p);
      else out.set(p.slice(root.length), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

function assertSameLayout(a: string, b: string): void {
  const ta = tree(a);
  const tb = tree(b);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  for (const [k, v] of ta) assert.ok(v.equals(tb.get(k)!), `${k} differs between ${a} and ${b}`);
}

const cachedLines = (stderr: string) => stderr.split('\n').filter((l) => /^ocislim: layer .*: from the cache$/.test(l)).length;
const layerLines = (stderr: string) => stderr.split('\n').filter((l) => /^ocislim: layer .*: (compressed|from the cache)/.test(l)).length;

/** build() without blocking the event loop (for tests whose proxy runs in this process). */
async function buildAsync(args: string[], cache: string | null): Promise<{ digest: string; stderr: string }> {
  const r = await ocislimAsync(['build', ...args, ...(cache ? [] : ['--no-cache'])], { env: cache ? { OCISLIM_CACHE: cache } : {} });
  assert.equal(r.status, 0, `ocislim build ${args.join(' ')}: ${r.stderr}`);
  return { digest: r.stdout.trim(), stderr: r.stderr };
}

function blobNames(cache: string): string[] {
  const d = join(cache, 'blobs', 'sha256');
  return existsSync(d) ? readdirSync(d) : [];
}

describe('layer cache', () => {
  it('a warm rebuild takes every layer from the cache, and gives byte for byte what an uncached build gives', () => {
    const cache = join(dir, 'c-hit');
    const args = ['/usr/bin/redis-server', '--expose', '6379'];
    const cold = build([...args, '-o', `oci:${join(dir, 'cold')}`], cache);
    assert.equal(cachedLines(cold.stderr), 0);
    const warm = build([...args, '-o', `oci:${join(dir, 'warm')}`], cache);
    assert.equal(cachedLines(warm.stderr), 3, warm.stderr);
    const none = build([...args, '-o', `oci:${join(dir, 'none')}`], null);
    assert.equal(cachedLines(none.stderr), 0);
    // The whole build is remembered, unless a file it read changed in the two seconds before (another job on this
    // machine installing packages): then the next build remembers it.
    let again = build([...args, '-o', `oci:${join(dir, 'again')}`], cache);
    for (let i = 0; i < 3 && !/inputs unchanged/.test(again.stderr); i++) again = build([...args, '-o', `oci:${join(dir, 'again')}`], cache);
    assert.match(again.stderr, /inputs unchanged since an earlier build: image from the cache/, 'the whole build remembered');
    assert.equal(cachedLines(again.stderr), 3, again.stderr);
    assert.equal(again.digest, cold.digest);
    assertSameLayout(join(dir, 'again'), join(dir, 'none'));
    assert.equal(warm.digest, cold.digest);
    assert.equal(none.digest, cold.digest);
    assertSameLayout(join(dir, 'warm'), join(dir, 'none'));
    assertSameLayout(join(dir, 'cold'), join(dir, 'none'));
    // File digests are remembered by stat identity.
    const memo = JSON.parse(readFileSync(join(cache, 'files.json'), 'utf8'));
    assert.ok(Object.keys(memo.rows).some((p) => p.endsWith('libc.so.6')), 'libc digest memoized');
    const info = ocislim(['cache', 'info'], { env: { OCISLIM_CACHE: cache } });
    assert.equal(info.status, 0);
    assert.match(info.stdout, /3 blobs, 3 layers/);
  });

  it('an OCI layout links the layers it takes from the cache (one filesystem), and copies them to another', () => {
    const cache = join(dir, 'c-link');
    const args = ['/usr/bin/redis-server', '--expose', '6379'];
    const out = join(dir, 'linked');
    const { digest } = build([...args, '-o', `oci:${out}`], cache);
    const layers = (JSON.parse(readFileSync(join(out, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as { layers: { digest: string }[] }).layers;
    assert.equal(layers.length, 3);
    for (const l of layers) {
      const inLayout = statSync(join(out, 'blobs', 'sha256', l.digest.slice(7)));
      const inCache = statSync(join(cache, 'blobs', 'sha256', l.digest.slice(7)));
      assert.equal(inLayout.ino, inCache.ino, `${l.digest}: the layout's blob is the cache's file`);
    }
    // Without the cache, from the build's scratch directory: still the same bytes.
    const none = join(dir, 'linked-none');
    assert.equal(build([...args, '-o', `oci:${none}`], null).digest, digest);
    assertSameLayout(out, none);
    // Another filesystem (tmpfs): a copy, the same bytes.
    if (existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(dir).dev) {
      const shm = mkdtempSync('/dev/shm/ocislim-cache-');
      try {
        assert.equal(build([...args, '-o', `oci:${join(shm, 'o')}`], cache).digest, digest);
        assertSameLayout(out, join(shm, 'o'));
        for (const l of layers) assert.equal(statSync(join(shm, 'o', 'blobs', 'sha256', l.digest.slice(7))).nlink, 1);
      } finally {
        removeDir(shm);
      }
    }
  });

  it('only the changed layer is rebuilt; a file rewritten with the same size and mtime is never served stale', async () => {
    const cache = join(dir, 'c-stale');
    const app = join(dir, 'app.conf');
    writeFileSync(app, 'version=1\n');
    const when = new Date('2020-01-01T00:00:00Z');
    utimesSync(app, when, when);
    // Two seconds old: its digests (the layer key's sha256, the inventory's md5) are remembered by its stat.
    await new Promise((r) => setTimeout(r, 2100));
    const args = (out: string) => ['/usr/bin/redis-server', '--copy', `${app}:/etc/app.conf`, '-o', `oci:${join(dir, out)}`, '--sbom', join(dir, `${out}.spdx.json`)];
    build(args('s1'), cache);
    const memo = JSON.parse(readFileSync(join(cache, 'files.json'), 'utf8'));
    assert.ok(memo.rows[app], 'the digests of app.conf are remembered');
    // Same size, same mtime, different bytes: only the ctime (and the content) tell.
    writeFileSync(app, 'version=2\n');
    utimesSync(app, when, when);
    const second = build(args('s2'), cache);
    assert.equal(cachedLines(second.stderr), 2, second.stderr);
    assert.doesNotMatch(second.stderr, /inputs unchanged/);
    const fresh = build(args('s3'), null);
    assert.equal(second.digest, fresh.digest);
    assertSameLayout(join(dir, 's2'), join(dir, 's3'));
    const sbom = (out: string) => readFileSync(join(dir, `${out}.spdx.json`), 'utf8');
    assert.equal(sbom('s2'), sbom('s3'));
    assert.notEqual(sbom('s1'), sbom('s2'));
  });

  it('concurrent builds share one cache safely', async () => {
    const cache = join(dir, 'c-conc');
    const runs = await Promise.all(
      [1, 2, 3, 4].map((i) => ocislimAsync(['build', '/usr/bin/redis-server', '/bin/busybox', '--layers', '1', '-o', `oci:${join(dir, `conc${i}`)}`], { env: { OCISLIM_CACHE: cache } })),
    );
    for (const r of runs) assert.equal(r.status, 0, r.stderr);
    const ref = build(['/usr/bin/redis-server', '/bin/busybox', '--layers', '1', '-o', `oci:${join(dir, 'conc-ref')}`], null);
    for (const r of runs) assert.equal(r.stdout.trim(), ref.digest);
    for (const i of [1, 2, 3, 4]) assertSameLayout(join(dir, `conc${i}`), join(dir, 'conc-ref'));
    assert.deepEqual(blobNames(cache).filter((n) => n.startsWith('.')), [], 'no temporary file left');
    const again = build(['/usr/bin/redis-server', '/bin/busybox', '--layers', '1', '-o', `oci:${join(dir, 'conc5')}`], cache);
    assert.equal(cachedLines(again.stderr), 1);
    assert.equal(again.digest, ref.digest);
  });

  it('a build killed with SIGKILL while writing a layer leaves nothing a later build would take', async () => {
    const cache = join(dir, 'c-kill');
    const big = join(dir, 'big.bin');
    // 48 MiB of poorly compressible bytes: long enough to be caught mid-write.
    const r = rng(7);
    const buf = Buffer.alloc(48 << 20);
    for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.floor(r() * 2 ** 32), i);
    writeFileSync(big, buf);
    // One layer: with the scaffolding in a layer of its own, that small layer could be finished (and cached, rightly)
    // before the big one is caught being written.
    const args = ['build', '--copy', `${big}:/data/big.bin`, '--layers', '1', '--compression-level', '9', '-o', `oci:${join(dir, 'killed')}`];
    // (its scratch directory under the test's own: a SIGKILL leaves it behind)
    const tmp = join(dir, 'tmp-killed');
    mkdirSync(tmp, { recursive: true });
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, OCISLIM_CACHE: cache, TMPDIR: tmp }, stdio: 'ignore' });
    const exited = new Promise((res) => child.on('exit', res));
    const blobs = join(cache, 'blobs', 'sha256');
    let caught = false;
    for (let i = 0; i < 2000 && child.exitCode === null; i++) {
      if (existsSync(blobs) && readdirSync(blobs).some((n) => n.startsWith('.layer-') && statSync(join(blobs, n)).size > 0)) {
        child.kill('SIGKILL');
        caught = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    await exited;
    assert.ok(caught, 'the build was killed while its layer was being written');
    assert.ok(!existsSync(join(dir, 'killed')), 'no half-written output');
    assert.ok(blobNames(cache).some((n) => n.startsWith('.layer-')), 'the killed write left only a temporary file');
    assert.equal(blobNames(cache).filter((n) => !n.startsWith('.')).length, 0, 'no blob under a digest name');
    const layers = join(cache, 'layers');
    assert.equal(existsSync(layers) ? readdirSync(layers).filter((n) => !n.startsWith('.')).length : 0, 0, 'no layer record');
    const okArgs = ['--copy', `${big}:/data/big.bin`, '--compression-level', '1'];
    const after1 = build([...okArgs, '-o', `oci:${join(dir, 'k1')}`], cache);
    assert.equal(cachedLines(after1.stderr), 0);
    const after2 = build([...okArgs, '-o', `oci:${join(dir, 'k2')}`], cache);
    assert.equal(cachedLines(after2.stderr), layerLines(after2.stderr));
    const fresh = build([...okArgs, '-o', `oci:${join(dir, 'k3')}`], null);
    assert.equal(after2.digest, fresh.digest);
    assertSameLayout(join(dir, 'k2'), join(dir, 'k3'));
    // prune empties it, temporary leftovers included once they are old.
    const p = ocislim(['cache', 'prune'], { env: { OCISLIM_CACHE: cache } });
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /removed [1-9]\d* blobs/);
    assert.equal(blobNames(cache).filter((n) => !n.startsWith('.')).length, 0);
    assert.equal(readdirSync(layers).length, 0, 'records of removed blobs go too');
  });

  it('--max-size trims least recently used entries; a bad size is a one-line error', () => {
    const cache = join(dir, 'c-hit');
    const bad = ocislim(['cache', 'prune', '--max-size', 'lots'], { env: { OCISLIM_CACHE: cache } });
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    const p = ocislim(['cache', 'prune', '--max-size', '5M'], { env: { OCISLIM_CACHE: cache } });
    assert.equal(p.status, 0, p.stderr);
    const total = blobNames(cache).reduce((n, b) => n + statSync(join(cache, 'blobs', 'sha256', b)).size, 0);
    assert.ok(total <= 5 << 20, `${total} bytes left`);
  });

  it('a remembered build is never served stale: an archive rewritten with the same size and mtime, a .dockerignore, a new file in a copied directory', async () => {
    const cache = join(dir, 'c-memo');
    const ctx = join(dir, 'memo-ctx');
    mkdirSync(join(ctx, 'root', 'bin'), { recursive: true });
    mkdirSync(join(ctx, 'conf'));
    copyFileSync('/bin/busybox', join(ctx, 'root', 'bin', 'busybox'));
    writeFileSync(join(ctx, 'root', 'data.txt'), 'version 1\n');
    // Uncompressed: a changed byte in a member leaves the archive's size as it was.
    execFileSync('tar', ['-C', join(ctx, 'root'), '-cf', join(ctx, 'app.tar'), '.']);
    writeFileSync(join(ctx, 'conf', 'a.conf'), 'a\n');
    writeFileSync(join(ctx, 'conf', 'b.conf'), 'b\n');
    writeFileSync(join(ctx, '.dockerignore'), 'conf/b.conf\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD app.tar /\nCOPY conf/ /etc/app/\nENTRYPOINT ["/bin/busybox", "true"]\n');
    const when = new Date('2020-01-01T00:00:00Z');
    utimesSync(join(ctx, 'app.tar'), when, when);
    // A build is remembered only when every file it read is two seconds old (a change in the same clock tick would
    // not show in the stat).
    await new Promise((r) => setTimeout(r, 2100));
    const args = (out: string) => ['-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(dir, out)}`];
    const first = build(args('m1'), cache);
    assert.doesNotMatch(first.stderr, /inputs unchanged/);
    let again = build(args('m2'), cache);
    for (let i = 0; i < 3 && !/inputs unchanged/.test(again.stderr); i++) again = build(args('m2'), cache);
    assert.match(again.stderr, /inputs unchanged since an earlier build: image from the cache/);
    assert.equal(again.digest, first.digest);
    assertSameLayout(join(dir, 'm1'), join(dir, 'm2'));
    const changes: [string, () => void][] = [
      ['the archive, same size and mtime', () => {
        const tar = readFileSync(join(ctx, 'app.tar'));
        const at = tar.indexOf('version 1');
        assert.ok(at > 0);
        tar.write('version 2', at);
        writeFileSync(join(ctx, 'app.tar'), tar);
        utimesSync(join(ctx, 'app.tar'), when, when);
      }],
      ['.dockerignore', () => writeFileSync(join(ctx, '.dockerignore'), '')],
      ['a new file in the copied directory', () => writeFileSync(join(ctx, 'conf', 'c.conf'), 'c\n')],
    ];
    let before = first.digest;
    for (const [i, [what, change]] of changes.entries()) {
      change();
      const cached = build(args(`mc${i}`), cache);
      assert.doesNotMatch(cached.stderr, /inputs unchanged/, `after a change of ${what}`);
      const fresh = build(args(`mf${i}`), null);
      assert.equal(cached.digest, fresh.digest, `after a change of ${what}`);
      assert.notEqual(cached.digest, before, `the change of ${what} shows in the image`);
      assertSameLayout(join(dir, `mc${i}`), join(dir, `mf${i}`));
      before = cached.digest;
    }
  });

  it('a cache inside the project (or above it) is no blind spot: inputs under it still count, the cache\'s own files do not', async () => {
    const proj = join(dir, 'proj-with-cache');
    mkdirSync(proj);
    copyFileSync('/usr/bin/true', join(proj, 'app'));
    writeFileSync(join(proj, 'app.conf'), 'one\n');
    await new Promise((r) => setTimeout(r, 2100));
    for (const cache of [proj, join(proj, '.cache')]) {
      const args = (out: string) => [join(proj, 'app') + ':/app', '--copy', `${join(proj, 'app.conf')}:/etc/app.conf`, '-o', `oci:${join(dir, out)}`];
      build(args('pc1'), cache);
      const again = build(args('pc2'), cache);
      assert.match(again.stderr, /inputs unchanged/, 'the cache writing into the project does not spoil the memo');
      copyFileSync('/usr/bin/false', join(proj, 'app.new'));
      execFileSync('mv', [join(proj, 'app.new'), join(proj, 'app')]);
      await new Promise((r) => setTimeout(r, 2100));
      const cached = build(args('pc3'), cache);
      assert.doesNotMatch(cached.stderr, /inputs unchanged/, `a program replaced under the cache directory ${cache}`);
      assert.equal(cached.digest, build(args('pc4'), null).digest);
      copyFileSync('/usr/bin/true', join(proj, 'app'));
      await new Promise((r) => setTimeout(r, 2100));
    }
  });

  it('a remembered build whose record is damaged (valid JSON, wrong shape) is rebuilt, never an error', async () => {
    const cache = join(dir, 'c-damaged');
    const app = join(dir, 'damaged-app');
    copyFileSync('/usr/bin/true', app);
    await new Promise((r) => setTimeout(r, 2100));
    const args = ['build', `${app}:/app`, '-o', `oci:${join(dir, 'dmg')}`];
    const first = build(args.slice(1), cache);
    const records = readdirSync(join(cache, 'builds')).filter((n) => n.endsWith('.json'));
    assert.equal(records.length, 1);
    const file = join(cache, 'builds', records[0]);
    const good = readFileSync(file, 'utf8');
    const damage: [string, (r: Record<string, unknown>) => void][] = [
      ['a null observation', (r) => (r.obs as unknown[]).push(null)],
      ['a null layer', (r) => ((r.layers as unknown[])[0] = null)],
      ['a cut manifest', (r) => (r.manifest = '{"schemaVersion":2,')],
      ['no platform', (r) => (r.platform = null)],
      ['observations not a list', (r) => (r.obs = { a: 1 })],
    ];
    for (const [what, hurt] of damage) {
      const rec = JSON.parse(good);
      hurt(rec);
      writeFileSync(file, JSON.stringify(rec));
      const r = ocislim(args, { env: { OCISLIM_CACHE: cache } });
      assert.equal(r.status, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), first.digest, what);
    }
  });

  it('base-image blobs pulled for --from are read from the registry once, then from the cache', async () => {
    const reg = await startRegistry(join(dir, 'registry'));
    const proxy = await startProxy(reg.port);
    try {
      const host = `127.0.0.1:${proxy.port}`;
      const base = await buildAsync(['/bin/busybox', '--push', `${host}/base:1`], null);
      assert.match(base.digest, /@sha256:/);
      const cache = join(dir, 'c-base');
      writeFileSync(join(dir, 'base-app.conf'), 'x=1\n');
      const args = (out: string) => ['--from', `${host}/base:1`, '--copy', `${join(dir, 'base-app.conf')}:/etc/app.conf`, '--entrypoint', '/bin/busybox', '-o', `oci:${join(dir, out)}`];
      proxy.reset();
      const first = await buildAsync(args('b1'), cache);
      const firstDown = proxy.bytesDown;
      assert.ok(firstDown > 500_000, `the base layer came from the registry (${firstDown} bytes)`);
      proxy.reset();
      const second = await buildAsync(args('b2'), cache);
      assert.ok(proxy.bytesDown < 100_000, `only manifests and config the second time (${proxy.bytesDown} bytes)`);
      assert.equal(second.digest, first.digest);
      const fresh = await buildAsync(args('b3'), null);
      assert.equal(fresh.digest, first.digest);
      assertSameLayout(join(dir, 'b2'), join(dir, 'b3'));
    } finally {
      await proxy.close();
      await reg.stop();
    }
  });
});
