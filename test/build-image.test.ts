import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { freePort, runcRun, runcStart, skopeo, umociUnpack, waitForRedis } from './helpers/container.js';
import { removeDir, run, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-build-');
});
after(() => removeDir(dir));

function build(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = ocislim(['build', ...args], opts);
  assert.equal(r.status, 0, `ocislim build ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stdout, /^sha256:[a-f0-9]{64}\n$/, 'stdout carries only the digest');
  return r.stdout.trim();
}

describe('ocislim build: images that real tools read and run', () => {
  it('redis: validated by oci-image-tool, read by skopeo, unpacked by umoci, served under runc', async () => {
    const layout = join(dir, 'redis');
    const digest = build(['/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`]);
    const v = run('oci-image-tool', ['validate', '--type', 'image', layout]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const info = JSON.parse(skopeo(['inspect', `oci:${layout}:latest`]));
    assert.equal(info.Digest, digest);
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Layers.length, 3);
    const cfg = JSON.parse(skopeo(['inspect', '--config', `oci:${layout}:latest`]));
    assert.deepEqual(cfg.config.Entrypoint, ['/usr/bin/redis-server']);
    assert.deepEqual(cfg.config.ExposedPorts, { '6379/tcp': {} });
    assert.equal(cfg.history.length, 3);

    const bundle = join(dir, 'redis-bundle');
    umociUnpack(`${layout}:latest`, bundle);
    assert.equal(readdirSync(join(bundle, 'rootfs/usr/bin')).sort().join(' '), 'redis-check-rdb redis-server');
    const port = await freePort();
    const c = runcStart(bundle, ['/usr/bin/redis-server', '--port', String(port), '--save', '', '--appendonly', 'no']);
    try {
      assert.equal(await waitForRedis(port), 'PONG');
      const server = run('redis-cli', ['-p', String(port), 'INFO', 'server']).stdout;
      assert.match(server, /executable:\/usr\/bin\/redis-server/);
      assert.match(server, /redis_mode:standalone/);
    } finally {
      c.stop();
    }
  });

  it('busybox-static and a musl-linked program run under runc', () => {
    const bb = join(dir, 'busybox');
    build(['/bin/busybox', '-o', `oci:${bb}`]);
    umociUnpack(`${bb}:latest`, join(dir, 'bb-bundle'));
    const r = runcRun(join(dir, 'bb-bundle'), ['/bin/busybox', 'echo', 'hello from busybox']);
    assert.equal(r.stdout, 'hello from busybox\n', r.stderr);

    writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void){puts("hello from musl");return 0;}\n');
    sh('musl-gcc -o hello-musl hello.c', dir);
    const ml = join(dir, 'musl');
    build([join(dir, 'hello-musl'), '-o', `oci:${ml}`]);
    umociUnpack(`${ml}:latest`, join(dir, 'musl-bundle'));
    assert.ok(existsSync(join(dir, 'musl-bundle/rootfs/lib/ld-musl-x86_64.so.1')));
    const m = runcRun(join(dir, 'musl-bundle'));
    assert.equal(m.stdout, 'hello from musl\n', m.stderr);
  });

  it('oci-archive and docker-archive are read by skopeo, and unpack with umoci', () => {
    const archive = join(dir, 'redis.oci.tar');
    const docker = join(dir, 'redis.docker.tar');
    const d1 = build(['/usr/bin/redis-server', '-o', `oci-archive:${archive}`, '-o', `docker-archive:${docker}:ocislim/redis:slim`]);
    assert.equal(JSON.parse(skopeo(['inspect', `oci-archive:${archive}`])).Digest, d1);
    const dinfo = JSON.parse(skopeo(['inspect', `docker-archive:${docker}`]));
    assert.equal(dinfo.Layers.length, 3);
    assert.deepEqual(JSON.parse(sh(`tar -xOf '${docker}' manifest.json`))[0].RepoTags, ['ocislim/redis:slim']);
    // skopeo picks the image by the name in manifest.json.
    skopeo(['copy', `docker-archive:${docker}:ocislim/redis:slim`, `oci:${join(dir, 'by-name')}:latest`]);
    for (const [src, name] of [
      [`oci-archive:${archive}`, 'copy-oci'],
      [`docker-archive:${docker}`, 'copy-docker'],
    ]) {
      skopeo(['copy', src, `oci:${join(dir, name)}:latest`]);
      umociUnpack(`${join(dir, name)}:latest`, join(dir, `${name}-bundle`));
      assert.ok(statSync(join(dir, `${name}-bundle/rootfs/usr/bin/redis-check-rdb`)).isFile());
    }
    // The archives hold an OCI layout: umoci unpacks them directly once untarred.
    for (const a of [archive, docker]) {
      const x = join(dir, `x-${a.endsWith('docker.tar') ? 'docker' : 'oci'}`);
      mkdirSync(x);
      sh(`tar -xf '${a}' -C '${x}'`);
      umociUnpack(`${x}:${a.endsWith('docker.tar') ? 'slim' : 'latest'}`, `${x}-bundle`);
    }
  });

  it('the same inputs give the same digest with other mtimes and from another directory; a change touches one layer', () => {
    const app = join(dir, 'app');
    mkdirSync(join(app, 'data'), { recursive: true });
    sh(`cp /usr/bin/redis-cli '${app}/redis-cli'`);
    writeFileSync(join(app, 'data/conf'), 'one\n');
    // No CA bundle: other tests add CAs to the host's store, which would change the library layer between builds.
    const args = (out: string) => [join(app, 'redis-cli'), join(app, 'data'), '--no-scaffold', 'certs', '-o', `oci:${out}`];
    const a = build(args(join(dir, 'r1')), { cwd: '/' });
    // Other modification times (explicit, not a sleep): they must not reach the image.
    sh(`touch -d @1000000000 '${app}/redis-cli' '${app}/data/conf' '${app}/data'`);
    const b = build(args(join(dir, 'r2')), { cwd: dir });
    assert.equal(a, b);
    writeFileSync(join(app, 'data/conf'), 'two\n');
    const c = build(args(join(dir, 'r3')));
    assert.notEqual(c, a);
    const layers = (o: string) => JSON.parse(skopeo(['inspect', `oci:${join(dir, o)}:latest`])).Layers as string[];
    const [l1, l3] = [layers('r1'), layers('r3')];
    assert.equal(l1.length, 3);
    assert.deepEqual(l3.slice(0, 2), l1.slice(0, 2), 'loader/libc and library layers are unchanged');
    assert.notEqual(l3[2], l1[2]);
    // Two different programs built on one system share their lower layer byte for byte.
    const d = join(dir, 'other');
    build(['/usr/bin/ls', '-o', `oci:${d}`]);
    assert.equal(layers('other')[0], l1[0]);
    // SOURCE_DATE_EPOCH sets every timestamp.
    const e = join(dir, 'epoch');
    build(args(e), { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    assert.equal(JSON.parse(skopeo(['inspect', '--config', `oci:${e}:latest`])).created, '2023-11-14T22:13:20Z');
  });

  it('keeps file capabilities, symlinks and hard links; --add unpacks gz, bz2 and xz tars; --copy copies', () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub/a.txt'), 'A');
    sh(`ln sub/a.txt sub/hard.txt && ln -s a.txt sub/link.txt`, tree);
    sh(`tar -C '${tree}' -czf t.tar.gz sub && tar -C '${tree}' -cjf t.tar.bz2 sub && tar -C '${tree}' -cJf t.tar.xz sub`, dir);
    const out = join(dir, 'mixed');
    build(['/usr/bin/ping', tree, '--add', `${join(dir, 't.tar.gz')}:/gz`, '--add', `${join(dir, 't.tar.bz2')}:/bz2`, '--add', `${join(dir, 't.tar.xz')}:/xz`, '--copy', `${join(tree, 'sub/a.txt')}:/etc/copied.txt`, '--entrypoint', '/usr/bin/ping', '-o', `oci:${out}`]);
    const bundle = join(dir, 'mixed-bundle');
    umociUnpack(`${out}:latest`, bundle);
    const rootfs = join(bundle, 'rootfs');
    assert.match(run('getcap', [join(rootfs, 'usr/bin/ping')]).stdout, /cap_net_raw[=+]ep/);
    for (const base of [tree.slice(1), 'gz/sub', 'bz2/sub', 'xz/sub']) {
      const p = join(rootfs, base.startsWith('gz') || base.startsWith('bz2') || base.startsWith('xz') ? base : join(base, 'sub'));
      assert.equal(readFileSync(join(p, 'a.txt'), 'utf8'), 'A', p);
      assert.equal(statSync(join(p, 'hard.txt')).ino, statSync(join(p, 'a.txt')).ino, `hard link kept in ${p}`);
      assert.equal(run('readlink', [join(p, 'link.txt')]).stdout.trim(), 'a.txt');
    }
    assert.equal(readFileSync(join(rootfs, 'etc/copied.txt'), 'utf8'), 'A');
    // As an unprivileged user whose only way to CAP_NET_RAW is the file capability, ping works.
    const ping = runcRun(bundle, ['/usr/bin/ping', '-c', '1', '127.0.0.1'], undefined, { user: { uid: 65532, gid: 65532 }, bounding: ['CAP_NET_RAW'] });
    assert.equal(ping.status, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, /1 received/);
  });

  it('a second tag in an existing layout keeps the first and shares blobs', () => {
    const layout = join(dir, 'tags');
    const d1 = build(['/usr/bin/redis-server', '-o', `oci:${layout}:one`]);
    const blobs1 = readdirSync(join(layout, 'blobs/sha256')).length;
    const d2 = build(['/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}:two`]);
    assert.notEqual(d1, d2);
    assert.equal(JSON.parse(skopeo(['inspect', `oci:${layout}:one`])).Digest, d1);
    assert.equal(JSON.parse(skopeo(['inspect', `oci:${layout}:two`])).Digest, d2);
    assert.equal(readdirSync(join(layout, 'blobs/sha256')).length, blobs1 + 2, 'only a new config and manifest');
  });

  it('--format docker writes Docker schema 2 (read back by skopeo from a docker-archive)', () => {
    const archive = join(dir, 'docker-format.tar');
    build(['/bin/busybox', '--format', 'docker', '-o', `docker-archive:${archive}:ocislim/bb:1`]);
    const manifest = JSON.parse(sh(`tar -xOf '${archive}' index.json`)).manifests[0];
    const raw = JSON.parse(sh(`tar -xOf '${archive}' blobs/sha256/${manifest.digest.slice(7)}`));
    assert.equal(JSON.parse(skopeo(['inspect', '--config', `docker-archive:${archive}`])).architecture, 'amd64');
    assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(raw.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(raw.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('podman (no daemon) loads the docker-archive and the oci-archive with their config and layers; the image it saves runs under runc', () => {
    // Private storage (vfs) so the test leaves the machine's podman store alone. podman run itself cannot start
    // containers here (it always sets RLIMIT_NPROC, which this sandbox refuses), so the loaded image goes back out
    // through podman save and runs under runc.
    const store = join(dir, 'podman');
    const podman = (args: string[]) => {
      const r = run('podman', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', ...args]);
      assert.equal(r.status, 0, `podman ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const archive = join(dir, 'podman-docker.tar');
    const r = ocislim(['build', '/bin/busybox', '--format', 'docker', '--cmd', '["/bin/busybox","echo","loaded by podman"]', '--expose', '8080', '-o', `docker-archive:${archive}:ocislim/bb:1`, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const built = JSON.parse(r.stdout) as { layers: { diffId: string }[] };
    assert.match(podman(['load', '-i', archive]), /Loaded image: (localhost\/)?ocislim\/bb:1/);
    const [img] = JSON.parse(podman(['image', 'inspect', 'ocislim/bb:1'])) as { Config: { Cmd: string[]; ExposedPorts: Record<string, unknown> }; RootFS: { Layers: string[] }; Architecture: string }[];
    assert.deepEqual(img.Config.Cmd, ['/bin/busybox', 'echo', 'loaded by podman']);
    assert.deepEqual(Object.keys(img.Config.ExposedPorts), ['8080/tcp']);
    assert.deepEqual(img.RootFS.Layers, built.layers.map((l) => l.diffId));
    assert.equal(img.Architecture, 'amd64');
    const saved = join(dir, 'podman-saved');
    podman(['save', '--format', 'oci-dir', '-o', saved, 'ocislim/bb:1']);
    umociUnpack(`${saved}:${JSON.parse(readFileSync(join(saved, "index.json"), "utf8")).manifests[0].annotations["org.opencontainers.image.ref.name"]}`, join(dir, 'podman-bundle'));
    assert.equal(runcRun(join(dir, 'podman-bundle')).stdout, 'loaded by podman\n');

    const oci = join(dir, 'podman-oci.tar');
    // A full name as the oci-archive's reference is the name podman loads it under.
    build(['/usr/bin/redis-server', '-o', `oci-archive:${oci}:ocislim/redis:slim`]);
    assert.match(podman(['load', '-i', oci]), /Loaded image: (localhost\/)?ocislim\/redis:slim/);
    const [redis] = JSON.parse(podman(['image', 'inspect', 'ocislim/redis:slim'])) as { Config: { Entrypoint: string[] } }[];
    assert.deepEqual(redis.Config.Entrypoint, ['/usr/bin/redis-server']);
  });

  it('config flags land in the config; inspect shows it and every file', () => {
    const layout = join(dir, 'flags');
    build([
      '/bin/busybox', '--entrypoint', '["/bin/busybox","sh"]', '--cmd=-c "echo hi"', '--env', 'A=1', '--env', 'B=two words',
      '--expose', '53/udp', '--workdir', '/srv', '--user', '65532:65532', '--label', 'org.example=yes', '--annotation', 'org.opencontainers.image.source=https://example.invalid/x',
      '--stop-signal', 'SIGINT', '--volume', '/data', '-o', `oci:${layout}`,
    ]);
    const cfg = JSON.parse(skopeo(['inspect', '--config', `oci:${layout}:latest`])).config;
    assert.deepEqual(cfg.Entrypoint, ['/bin/busybox', 'sh']);
    assert.deepEqual(cfg.Cmd, ['-c', 'echo hi']);
    assert.ok(cfg.Env.includes('A=1') && cfg.Env.includes('B=two words'));
    assert.deepEqual(cfg.ExposedPorts, { '53/udp': {} });
    assert.equal(cfg.WorkingDir, '/srv');
    assert.equal(cfg.User, '65532:65532');
    assert.deepEqual(cfg.Labels, { 'org.example': 'yes' });
    assert.equal(cfg.StopSignal, 'SIGINT');
    assert.deepEqual(cfg.Volumes, { '/data': {} });
    const raw = JSON.parse(skopeo(['inspect', '--raw', `oci:${layout}:latest`]));
    assert.equal(raw.annotations['org.opencontainers.image.source'], 'https://example.invalid/x');
    const ins = ocislim(['inspect', '--files', `oci:${layout}`]);
    assert.equal(ins.status, 0, ins.stderr);
    assert.match(ins.stdout, /Platform:\s+linux\/amd64/);
    assert.match(ins.stdout, /\d+(\.\d+)? (KiB|MiB)\s+\/bin\/busybox/);
    const j = JSON.parse(ocislim(['inspect', '--json', '--files', `oci:${layout}`]).stdout);
    const files = j.layers.flatMap((l: { files: { path: string; size: number }[] }) => l.files);
    assert.ok(files.some((f: { path: string; size: number }) => f.path === '/bin/busybox' && f.size === statSync('/bin/busybox').size));
  });
});
