import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim, ocislimAsync } from './helpers/cli.js';
import { freePort, runcRun, runcStart, skopeo, umociUnpack, waitForRedis } from './helpers/container.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';
import { debianSysroot } from './helpers/sysroot.js';

/** What redis-server needs in a Debian 12 sysroot (its package, its binary's package and the libraries' packages). */
const REDIS = ['redis-server', 'redis-tools', 'libc6', 'libatomic1', 'libjemalloc2', 'liblzf1', 'libssl3', 'libsystemd0', 'libcap2', 'libgcrypt20', 'libgpg-error0', 'liblz4-1', 'liblzma5', 'libzstd1', 'libgcc-s1', 'libstdc++6'];

let dir: string;
let reg: TestRegistry;
let arm64: string;
let s390x: string;
before(async () => {
  dir = tempDir('ocislim-multi-');
  reg = await startRegistry(join(dir, 'registry'));
  arm64 = debianSysroot('arm64', REDIS);
  s390x = debianSysroot('s390x', REDIS);
});
after(async () => {
  await reg.stop();
  removeDir(dir);
});

function ok(args: string[]) {
  const r = ocislim(args, { timeout: 300000 });
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** A one-line error matching `re`; status 1, or 2 for a mistake in the command line itself. */
function fails(args: string[], re: RegExp, status = 1) {
  const r = ocislim(args);
  assert.equal(r.status, status, `ocislim ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const raw = (ref: string) => JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', ref]));

/** Unpacks one platform's image with umoci and runs it under runc, through qemu-user-static put inside the image. */
function bundleFor(layoutTag: string, name: string, qemu?: string): { bundle: string; argv0: string[] } {
  const bundle = join(dir, name);
  umociUnpack(layoutTag, bundle);
  if (!qemu) return { bundle, argv0: [] };
  copyFileSync(`/usr/bin/${qemu}`, join(bundle, 'rootfs', qemu));
  sh(`chmod 755 '${join(bundle, 'rootfs', qemu)}'`);
  return { bundle, argv0: [`/${qemu}`] };
}

async function answersPing(layoutTag: string, name: string, qemu?: string): Promise<string> {
  const { bundle, argv0 } = bundleFor(layoutTag, name, qemu);
  const port = await freePort();
  const c = runcStart(bundle, [...argv0, '/usr/bin/redis-server', '--port', String(port), '--save', '', '--appendonly', 'no']);
  try {
    assert.equal(await waitForRedis(port), 'PONG', readFileSync(join(bundle, 'runc.log'), 'utf8'));
    return sh(`redis-cli -p ${port} INFO server`);
  } finally {
    c.stop();
  }
}

describe('multi-platform images: --root PLATFORM=DIR, indexes in every sink', () => {
  const roots = () => ['--root', 'linux/amd64=/', '--root', `linux/arm64=${arm64}`];

  it('redis for amd64 and arm64 (a Debian arm64 sysroot) as one tag: skopeo sees the index, each platform runs', async () => {
    const layout = join(dir, 'redis');
    const tag = `${reg.host}/redis:multi`;
    const r = ok(['build', '/usr/bin/redis-server', ...roots(), '--expose', '6379', '-o', `oci:${layout}`, '-o', `oci-archive:${layout}.tar`, '--push', tag]);
    const index = raw(`docker://${tag}`);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      index.manifests.map((m: { platform: unknown }) => m.platform),
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    );
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${tag}`])).Architecture, 'arm64');
    // stdout: REF@DIGEST of the index; the layout's index.json points at the same index.
    const indexDigest = r.stdout.trim().split('@')[1];
    assert.equal(JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest, indexDigest);
    assert.deepEqual(raw(`oci:${layout}:latest`), index);
    assert.deepEqual(raw(`oci-archive:${layout}.tar:latest`), index);

    // The arm64 image, fetched the way a user on arm64 would, answers PING under qemu-aarch64 inside runc.
    skopeo(['copy', '--src-tls-verify=false', '--override-arch', 'arm64', `docker://${tag}`, `oci:${join(dir, 'arm64')}:a`]);
    assert.match(await answersPing(`${join(dir, 'arm64')}:a`, 'arm64-bundle', 'qemu-aarch64-static'), /^arch_bits:64/m);
    // The amd64 image from the same tag runs natively.
    skopeo(['copy', '--src-tls-verify=false', '--override-arch', 'amd64', `docker://${tag}`, `oci:${join(dir, 'amd64')}:a`]);
    assert.match(await answersPing(`${join(dir, 'amd64')}:a`, 'amd64-bundle'), /^executable:\/usr\/bin\/redis-server/m);

    // Same inputs, same index digest (roots before the program: a repeated --root does not swallow it).
    const again = ok(['build', ...roots(), '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'again')}`]);
    assert.equal(again.stdout.trim(), indexDigest);

    // inspect lists the platforms, --platform shows one.
    const listed = ok(['inspect', `oci:${layout}`]).stdout;
    assert.match(listed, /^Platforms: +2/m);
    assert.match(listed, new RegExp(`linux/arm64 +${index.manifests[1].digest}`));
    const json = JSON.parse(ok(['inspect', '--json', `oci-archive:${layout}.tar`]).stdout);
    assert.deepEqual(
      json.manifests.map((m: { platform: string; digest: string }) => [m.platform, m.digest]),
      index.manifests.map((m: { platform: { architecture: string }; digest: string }) => [`linux/${m.platform.architecture}`, m.digest]),
    );
    assert.match(ok(['inspect', '--platform', 'linux/arm64', `oci:${layout}`]).stdout, /^Platform: +linux\/arm64$/m);

    // push oci:DIR of a layout holding an index: the same index, byte for byte, under another tag.
    const pushed = ok(['push', `oci:${layout}`, `${reg.host}/copy:multi`]);
    assert.equal(pushed.stdout.trim(), `${reg.host}/copy@${indexDigest}`);
    // pull --platform all keeps the index; --platform arm64 one image; docker-archive takes one image only.
    ok(['pull', '--platform', 'all', tag, '-o', `oci:${join(dir, 'pulled')}`]);
    assert.deepEqual(raw(`oci:${join(dir, 'pulled')}:latest`), index);
    const one = ok(['pull', '--platform', 'linux/arm64', tag, '-o', `docker-archive:${join(dir, 'one.tar')}:x/redis:arm64`]);
    assert.equal(one.stdout.trim(), index.manifests[1].digest);
    fails(['pull', '--platform', 'all', tag, '-o', `docker-archive:${join(dir, 'all.tar')}`], /docker-archive holds one image/, 2);
    fails(['build', '/usr/bin/redis-server', ...roots(), '-o', `docker-archive:${join(dir, 'multi.tar')}`], /docker-archive holds one image, and this build makes 2/, 2);
  });

  it('a big-endian third platform: s390x from Debian s390x packages runs under qemu-s390x; --format docker gives a manifest list', async () => {
    const layout = join(dir, 'three');
    ok(['build', '/usr/bin/redis-server', ...roots(), '--root', `linux/s390x=${s390x}`, '--format', 'docker', '-o', `oci:${layout}`, '--push', `${reg.host}/redis:three`]);
    const list = raw(`docker://${reg.host}/redis:three`);
    assert.equal(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(
      list.manifests.map((m: { platform: { architecture: string }; mediaType: string }) => [m.platform.architecture, m.mediaType]),
      ['amd64', 'arm64', 's390x'].map((a) => [a, 'application/vnd.docker.distribution.manifest.v2+json']),
    );
    skopeo(['copy', '--src-tls-verify=false', '--override-arch', 's390x', `docker://${reg.host}/redis:three`, `oci:${join(dir, 's390x')}:s`]);
    const info = await answersPing(`${join(dir, 's390x')}:s`, 's390x-bundle', 'qemu-s390x-static');
    assert.match(info, /^os:Linux .* s390x/m);
    // And a plain command of the image, to completion.
    const { bundle, argv0 } = bundleFor(`${join(dir, 's390x')}:s`, 's390x-version', 'qemu-s390x-static');
    const v = runcRun(bundle, [...argv0, '/usr/bin/redis-server', '--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^Redis server v=\d+\.\d+/);
  });

  it('bad input is one line naming what is wrong', async () => {
    const out = ['-o', `oci:${join(dir, 'bad')}`];
    const empty = tempDir('ocislim-empty-root-');
    try {
      fails(['build', '/usr/bin/redis-server', '--root', 'linux/amd64=/', '--root', `linux/arm64=${empty}`, ...out], new RegExp(`--root linux/arm64=${empty}: /usr/bin/redis-server: no such file`));
    } finally {
      removeDir(empty);
    }
    fails(['build', '/usr/bin/redis-server', '--root', 'linux/arm64=/a', '--root', `linux/arm64=${arm64}`, ...out], /two roots for linux\/arm64 \(\/a and /, 2);
    fails(['build', '/usr/bin/redis-server', '--root', 'linux/amd64=/', '--root', `linux/s390x=${arm64}`, ...out], new RegExp(`--root linux/s390x=${arm64}: /usr/bin/redis-server is linux/arm64, not linux/s390x`));
    fails(['build', '/usr/bin/redis-server', '--root', 'linux/amd64=/', '--root', arm64, ...out], /every root names its platform/, 2);
    fails(['build', '/usr/bin/redis-server', '--platform', 'all', ...out], /--platform all: building for several platforms needs one --root PLATFORM=DIR per platform/, 2);
    fails(['build', '/usr/bin/redis-server', '--platform', 'linux/all', ...out], /"linux\/all" is not a platform/, 2);
    fails(['build', '/usr/bin/redis-server', ...roots(), '--platform', 'linux/s390x', ...out], /--platform linux\/s390x: no --root for it \(roots: linux\/amd64, linux\/arm64\)/, 2);
    fails(['inspect', '--files', `oci:${join(dir, 'redis')}`], /multi-platform image \(linux\/amd64, linux\/arm64\): choose one with --platform/);
    fails(['inspect', '--platform', 'linux/ppc64le', `oci:${join(dir, 'redis')}`], /no image for linux\/ppc64le \(it has linux\/amd64, linux\/arm64\)/);
    // An index of indexes: copied whole it would name what ocislim does not carry; one platform is still found in it.
    const nested = join(dir, 'nested');
    sh(`cp -r '${join(dir, 'redis')}' '${nested}'`);
    const inner = JSON.parse(readFileSync(join(nested, 'index.json'), 'utf8')).manifests[0];
    const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...inner, annotations: undefined }] }));
    const outerDigest = `sha256:${createHash('sha256').update(outer).digest('hex')}`;
    writeFileSync(join(nested, 'blobs/sha256', outerDigest.slice(7)), outer);
    writeFileSync(join(nested, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: outerDigest, size: outer.length }] }));
    fails(['push', `oci:${nested}`, `${reg.host}/nested:1`], /the index lists application\/vnd\.oci\.image\.index\.v1\+json; only indexes of images are copied whole/);
    assert.match(ok(['inspect', '--platform', 'linux/arm64', `oci:${nested}`]).stdout, /^Platform: +linux\/arm64$/m);
    // --platform picks among the roots: one image, no index.
    const single = await ocislimAsync(['build', '/usr/bin/redis-server', ...roots(), '--platform', 'linux/arm64', '-o', `oci:${join(dir, 'picked')}`]);
    assert.equal(single.status, 0, single.stderr);
    assert.equal(raw(`oci:${join(dir, 'picked')}:latest`).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  it('index create and append: images from a registry and from local archives into one index; blobs the registry has are mounted', async () => {
    const repo = `${reg.host}/combined`;
    // Each platform built and pushed on its own, the arm64 one to another repository of the same registry.
    ok(['build', '/usr/bin/redis-server', '--push', `${reg.host}/single:amd64`]);
    ok(['build', '/usr/bin/redis-server', '--root', arm64, '--push', `${reg.host}/other/single:arm64`]);
    ok(['build', '/usr/bin/redis-server', '--root', s390x, '-o', `oci-archive:${join(dir, 's390x.tar')}`]);
    const created = ok(['index', 'create', `${repo}:1`, `${reg.host}/single:amd64`, `docker://${reg.host}/other/single:arm64`]);
    // Every blob of both images was in the registry: mounted from its repository, none uploaded.
    assert.match(created.stderr, /pushed .*combined:1: 0 uploaded, 8 mounted, 0 already there/);
    const index = raw(`docker://${repo}:1`);
    assert.equal(created.stdout.trim(), `${repo}@${JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${repo}:1`])).Digest}`);
    assert.deepEqual(
      index.manifests.map((m: { platform: { architecture: string }; digest: string }) => m.platform.architecture),
      ['amd64', 'arm64'],
    );
    assert.equal(index.manifests[0].digest, JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/single:amd64`])).Digest);
    // append: a local archive joins; its blobs are uploaded, the index's own are already there.
    const appended = ok(['index', 'append', `${repo}:1`, `oci-archive:${join(dir, 's390x.tar')}`]);
    // The two images already in the index: their 8 blobs are there (the s390x ones are uploaded, or mounted where
    // an earlier push to this registry left them).
    const counts = /pushed .*combined:1: (\d+) uploaded, (\d+) mounted, (\d+) already there/.exec(appended.stderr);
    assert.ok(counts, appended.stderr);
    assert.equal(Number(counts[3]), 8, appended.stderr);
    assert.ok(Number(counts[1]) + Number(counts[2]) >= 4, appended.stderr);
    const three = raw(`docker://${repo}:1`);
    assert.deepEqual(three.manifests.slice(0, 2), index.manifests);
    assert.equal(three.manifests[2].platform.architecture, 's390x');
    // Appending what is there changes nothing; another image for a platform it has is refused.
    const again = ok(['index', 'append', `${repo}:1`, `oci-archive:${join(dir, 's390x.tar')}`]);
    assert.equal(again.stdout, appended.stdout);
    fails(['index', 'append', `${repo}:1`, `${reg.host}/redis:multi`], /redis:multi: the index already has an image for linux\/amd64 \(sha256:/);
    // A local index from registry images, readable by skopeo.
    ok(['index', 'create', `oci:${join(dir, 'local-index')}:v1`, `${repo}:1`]);
    assert.deepEqual(raw(`oci:${join(dir, 'local-index')}:v1`), three);
    fails(['index', 'create', `docker-archive:${join(dir, 'x.tar')}`, `${repo}:1`], /a docker-archive holds one image/, 2);
  });

  it('a Dockerfile for two platforms: --platform linux/amd64,linux/arm64 with a --root each; COPY build/${TARGETARCH}/app picks each binary', async () => {
    const bb = debianSysroot('arm64', ['busybox-static']);
    const ctx = join(dir, 'df-context');
    sh(`mkdir -p '${ctx}/build/amd64' '${ctx}/build/arm64' && cp /bin/busybox '${ctx}/build/amd64/app' && cp '${bb}/bin/busybox' '${ctx}/build/arm64/app'`);
    const df = join(dir, 'Dockerfile.multi');
    writeFileSync(df, 'FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nCOPY build/${TARGETARCH}/app /bin/busybox\nLABEL built.for=${TARGETPLATFORM}\nENTRYPOINT ["/bin/busybox", "echo"]\n');
    const layout = join(dir, 'df-multi');
    const roots = ['--root', 'linux/amd64=/', '--root', `linux/arm64=${bb}`];
    ok(['build', '-f', df, ctx, '--platform', 'linux/amd64,linux/arm64', ...roots, '-o', `oci:${layout}`]);
    const index = raw(`oci:${layout}:latest`);
    assert.deepEqual(
      index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
      ['amd64', 'arm64'],
    );
    for (const [arch, qemu] of [['amd64', undefined], ['arm64', 'qemu-aarch64-static']] as const) {
      skopeo(['copy', '--override-arch', arch, `oci:${layout}:latest`, `oci:${join(dir, `df-${arch}`)}:x`]);
      const cfg = JSON.parse(skopeo(['inspect', '--config', `oci:${join(dir, `df-${arch}`)}:x`]));
      assert.equal(cfg.config.Labels['built.for'], `linux/${arch}`);
      const { bundle, argv0 } = bundleFor(`${join(dir, `df-${arch}`)}:x`, `df-${arch}-bundle`, qemu);
      const r = runcRun(bundle, [...argv0, '/bin/busybox', 'echo', `hello from ${arch}`]);
      assert.equal(r.stdout, `hello from ${arch}\n`, r.stderr);
    }
    // A Dockerfile that copies the amd64 binary for every platform: the arm64 image is refused, naming its root.
    writeFileSync(df, 'FROM scratch\nCOPY build/amd64/app /app\n');
    fails(['build', '-f', df, ctx, '--platform', 'linux/amd64,linux/arm64', ...roots, '-o', `oci:${join(dir, 'df-bad')}`], new RegExp(`--root linux/arm64=${bb}: /app is linux/amd64, not linux/arm64`));
  });
});
