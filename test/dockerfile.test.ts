import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ocislim, ocislimAsync } from './helpers/cli.js';
import { freePort, runcRun, runcStart, skopeo, umociUnpack, waitForRedis } from './helpers/container.js';
import { fileRegistry, TestRegistry } from './helpers/registry.js';
import { run, sh } from './helpers/sh.js';

let dir: string;
let reg: TestRegistry;
fileRegistry('ocislim-dockerfile-', (d, r) => {
  dir = d;
  reg = r;
});

/** Compressed size of an image's layers in the registry (what a pull downloads, besides a config of < 1 KiB). */
function imageSize(ref: string): number {
  const m = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]));
  return m.layers.reduce((n: number, l: { size: number }) => n + l.size, 0);
}

describe('Dockerfile builds', () => {
  it('malformed Dockerfiles and unsupported instructions: an error with the line, nothing written', () => {
    const ctx = join(dir, 'bad');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'f'), 'x');
    sh(`ln -s /etc/passwd ${ctx}/escape`);
    const cases: [string, RegExp][] = [
      ['FROM scratch\nCOPY f /f\nRUN make\n', /Dockerfile:3: RUN is not supported/],
      ['FROM scratch\nSHELL ["/bin/sh"]\n', /Dockerfile:2: SHELL is not supported/],
      ['FROM scratch\nONBUILD COPY f /\n', /Dockerfile:2: ONBUILD is not supported/],
      ['FROM scratch\nFOO bar\n', /Dockerfile:2: unknown instruction FOO/],
      ['FROM scratch AS build\nRUN make\nFROM scratch\nCOPY --from=build /x /x\n', /Dockerfile:2: RUN is not supported: ocislim never runs commands/],
      ['FROM scratch\nFROM scratch\nCOPY --from=1 /x /x\n', /Dockerfile:3: COPY --from=1: stage 1 needs to be defined before the current stage/],
      ['FROM scratch\nCOPY --from=$X /x /x\n', /Dockerfile:2: COPY --from=\$X: variables are not allowed/],
      ['FROM scratch AS a\nFROM scratch\n', /--target nope: no stage of that name/],
      ['FROM scratch\nADD https://example.invalid/x.tar.gz /\n', /Dockerfile:2: ADD https:\/\/example\.invalid\/x\.tar\.gz: URLs are not supported/],
      ['COPY f /f\n', /Dockerfile:1: (no FROM|COPY before FROM)/],
      ['FROM scratch\nCOPY f\n', /Dockerfile:2: COPY needs a source and a destination/],
      ['FROM scratch\nCOPY --parents f /\n', /Dockerfile:2: COPY --parents is not supported/],
      ['FROM scratch\nEXPOSE 99999\n', /Dockerfile:2: EXPOSE 99999/],
      ['FROM scratch\nHEALTHCHECK --interval=soon CMD true\n', /Dockerfile:2: HEALTHCHECK --interval=soon: not a duration/],
      ['FROM scratch\nSTOPSIGNAL SIGNOPE\n', /Dockerfile:2: STOPSIGNAL SIGNOPE: not a signal/],
      ['FROM scratch\nENV A=${B\n', /Dockerfile:2: ENV .*missing '}'/],
      ['FROM scratch\nCMD ["a", 1]\n', /Dockerfile:2: CMD: the JSON array must hold only strings/],
      ['FROM scratch\nCOPY ../outside /x\n', /Dockerfile:2: COPY: \.\.\/outside is outside the build context/],
      ['FROM scratch\nCOPY escape /x\n', /Dockerfile:2: COPY: escape is a symbolic link to "\/etc\/passwd", which is not in the build context/],
      ['FROM scratch\nCOPY --chown=redis f /f\n', /Dockerfile:2: COPY --chown=redis: unknown user "redis" \(not in the image's \/etc\/passwd\)/],
    ];
    for (const [text, msg] of cases) {
      writeFileSync(join(ctx, 'Dockerfile'), text);
      const out = join(dir, 'bad-out');
      const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, ...(text.includes('AS a') ? ['--target', 'nope'] : []), '-o', `oci:${out}`]);
      assert.notEqual(r.status, 0, text);
      assert.match(r.stderr, msg, text);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(out), 'nothing written');
    }
  });

  it('the shell form of CMD without /bin/sh: an error from the run check, a warning with --no-verify; FROM oci:DIR bases on a local layout', () => {
    const ctx = join(dir, 'shell');
    mkdirSync(ctx);
    sh(`cp /bin/busybox ${ctx}/busybox`);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCMD echo hello\n');
    // The run check refuses it (nothing written); with --no-verify it is a warning.
    const refused = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(dir, 'shell-out')}`]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /^ocislim: .*Dockerfile:3: CMD uses the shell form, but the image has no \/bin\/sh: use the exec form [^\n]*\n$/);
    assert.ok(!existsSync(join(dir, 'shell-out')), 'nothing written');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '--no-verify', '-o', `oci:${join(dir, 'shell-out')}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: .*Dockerfile:3: CMD uses the shell form, but the image has no \/bin\/sh/);
    writeFileSync(join(ctx, 'Dockerfile2'), `FROM oci:${join(dir, 'shell-out')}\nCOPY busybox /bin/sh\nCMD echo hello from a shell\n`);
    const b = ocislim(['build', '-f', join(ctx, 'Dockerfile2'), ctx, '-o', `oci:${join(dir, 'shell-out2')}`]);
    assert.equal(b.status, 0, b.stderr);
    assert.doesNotMatch(b.stderr, /warning/);
    umociUnpack(`${join(dir, 'shell-out2')}:latest`, join(dir, 'shell-bundle'));
    assert.equal(runcRun(join(dir, 'shell-bundle')).stdout, 'hello from a shell\n');
  });

  it('busybox-static FROM scratch, busybox as entrypoint running a command; comments, continuations, ARG, ENV, .dockerignore', () => {
    const ctx = join(dir, 'bb');
    mkdirSync(join(ctx, 'etc'), { recursive: true });
    sh(`cp /bin/busybox ${ctx}/busybox && echo keep > ${ctx}/etc/keep && echo secret > ${ctx}/etc/secret.key`);
    writeFileSync(join(ctx, '.dockerignore'), '# keys stay out\n**/*.key\n');
    writeFileSync(
      join(ctx, 'Dockerfile'),
      ['# escape=`', 'ARG GREETING=hello', 'FROM scratch', 'ARG GREETING', '# the binary', 'COPY --chmod=755 busybox /bin/busybox', 'COPY etc /etc/', 'ENV WHO=world `', '    MODE=test', 'LABEL org.example.greeting="${GREETING}"', 'WORKDIR /tmp', 'STOPSIGNAL SIGINT', 'HEALTHCHECK --interval=30s --retries=3 CMD ["/bin/busybox", "true"]', 'ENTRYPOINT ["/bin/busybox"]', 'CMD ["sh", "-c", "echo $WHO from busybox in $(pwd)"]', ''].join('\n'),
    );
    const layout = join(dir, 'bb-out');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '--build-arg', 'GREETING=hi', '-o', `oci:${layout}`]);
    assert.equal(r.status, 0, r.stderr);
    // skopeo's OCI config type has no Healthcheck: read the config blob itself.
    const cfgDigest = JSON.parse(skopeo(['inspect', '--raw', `oci:${layout}:latest`])).config.digest.slice(7);
    const cfg = JSON.parse(sh(`cat ${join(layout, 'blobs/sha256', cfgDigest)}`)).config;
    assert.equal(cfg.Labels['org.example.greeting'], 'hi');
    assert.ok(cfg.Env.includes('WHO=world') && cfg.Env.includes('MODE=test'));
    assert.equal(cfg.Healthcheck.Retries, 3);
    assert.equal(cfg.Healthcheck.Interval, 30e9);
    umociUnpack(`${layout}:latest`, join(dir, 'bb-bundle'));
    assert.ok(existsSync(join(dir, 'bb-bundle/rootfs/etc/keep')));
    assert.ok(!existsSync(join(dir, 'bb-bundle/rootfs/etc/secret.key')), '.dockerignore excludes it');
    const out = runcRun(join(dir, 'bb-bundle'));
    assert.equal(out.stdout, 'world from busybox in /tmp\n', out.stderr);
  });

  it('the classic recipe: rootfs.tar.gz + redis.conf + the Dockerfile verbatim, pushed, pulled by skopeo, run by runc; COPY --from a registry image', async () => {
    const ctx = join(dir, 'redis');
    mkdirSync(join(ctx, 'rootfs/usr/bin'), { recursive: true });
    // The manual way: ldd lists the libraries, tar packs them with the binary and the loader.
    sh(
      `cp /usr/bin/redis-server rootfs/usr/bin/redis-server
       for f in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do mkdir -p rootfs$(dirname $f); cp -L $f rootfs$f; done
       tar -C rootfs -czf rootfs.tar.gz .
       rm -rf rootfs
       printf 'bind 127.0.0.1\\nprotected-mode no\\nsave ""\\nappendonly no\\n' > redis.conf`,
      ctx,
    );
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar.gz /\nCOPY redis.conf /etc/redis/redis.conf\nEXPOSE 6379\nCMD ["redis-server"]\n');
    const r = await ocislimAsync(['build', '-f', join(ctx, 'Dockerfile'), ctx, '--push', `${reg.host}/classic:1`]);
    assert.equal(r.status, 0, r.stderr);
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/classic:1`, `oci:${join(dir, 'classic-oci')}:latest`]);
    umociUnpack(`${join(dir, 'classic-oci')}:latest`, join(dir, 'classic-bundle'));
    const port = await freePort();
    const c = runcStart(join(dir, 'classic-bundle'), ['redis-server', '/etc/redis/redis.conf', '--port', String(port)]);
    try {
      assert.equal(await waitForRedis(port), 'PONG');
      const bench = run('redis-benchmark', ['-q', '-n', '10000', '-p', String(port), '-t', 'set,get'], { timeout: 120000 });
      assert.equal(bench.status, 0, bench.stderr);
      assert.match(bench.stdout, /SET: [\d.]+ requests per second/);
      assert.match(bench.stdout, /GET: [\d.]+ requests per second/);
    } finally {
      c.stop();
    }
    // The same image without a Dockerfile, with the default scaffolding, is no larger but for that scaffolding.
    const d = await ocislimAsync(['build', '/usr/bin/redis-server', '--expose', '6379', '--push', `${reg.host}/direct:1`]);
    assert.equal(d.status, 0, d.stderr);
    // Both carry the package records (/var/lib/dpkg/status.d): the classic image's copies are recognised by their
    // md5; it lacks only redis-server's record, the package of the symlink the recipe replaced by a copy.
    const [classic, direct] = [imageSize(`${reg.host}/classic:1`), imageSize(`${reg.host}/direct:1`)];
    // COPY --from=IMAGE reads a registry image (the one just pushed), and FROM a registry image is a base.
    writeFileSync(join(ctx, 'Dockerfile.from'), `FROM ${reg.host}/direct:1\nCOPY --from=${reg.host}/classic:1 /etc/redis/redis.conf /etc/redis/\nCMD ["redis-server", "/etc/redis/redis.conf"]\n`);
    const f = await ocislimAsync(['build', '-f', join(ctx, 'Dockerfile.from'), ctx, '-o', `oci:${join(dir, 'from-image')}`]);
    assert.equal(f.status, 0, f.stderr);
    umociUnpack(`${join(dir, 'from-image')}:latest`, join(dir, 'from-image-bundle'));
    assert.equal(readFileSync(join(dir, 'from-image-bundle/rootfs/etc/redis/redis.conf'), 'utf8'), readFileSync(join(ctx, 'redis.conf'), 'utf8'));
    assert.ok(existsSync(join(dir, 'from-image-bundle/rootfs/usr/bin/redis-server')), 'the base image is below');
    // The direct build also ships what the classic recipe forgets (a minimal nsswitch.conf for redis's lookups).
    assert.ok(direct <= classic + 4096, `direct ${direct} bytes vs classic ${classic} bytes`);
  });

  it('the run check follows symlinks through symlinked directories; links inside a copied directory are copied as they are', () => {
    const ctx = join(dir, 'links');
    sh(`mkdir -p ${ctx}/tree/usr/lib ${ctx}/tree/usr/bin && cp /bin/busybox ${ctx}/tree/usr/lib/bb && ln -s usr/lib ${ctx}/tree/lib && ln -s /lib/bb ${ctx}/tree/usr/bin/echo && ln -s /etc/host-only ${ctx}/tree/usr/bin/abs`);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY tree /\nENTRYPOINT ["/usr/bin/echo", "through"]\n');
    const layout = join(dir, 'links-oci');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '--no-scaffold', '-o', `oci:${layout}`]);
    assert.equal(r.status, 0, r.stderr);
    // /usr/bin/echo -> /lib/bb resolves through /lib -> usr/lib: no complaint; the absolute link that dangles is kept, with a warning.
    assert.doesNotMatch(r.stderr, /usr\/bin\/echo/);
    assert.match(r.stderr, /warning: \/usr\/bin\/abs is a symbolic link to "\/etc\/host-only", which is not in the image/);
    umociUnpack(`${layout}:latest`, join(dir, 'links-bundle'));
    assert.equal(runcRun(join(dir, 'links-bundle')).stdout, 'through\n');
  });

  it('the same run-time rules as a CLI build: a static program that reads the system CA bundle gets it from a Dockerfile too (not with --no-scaffold certs)', () => {
    const ctx = join(dir, 'certs');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'ca.c'), '#include <stdio.h>\nint main(void) { FILE *f = fopen("/etc/ssl/certs/ca-certificates.crt", "r"); puts(f ? "bundle found" : "no bundle"); return 0; }\n');
    sh('gcc -static -O2 -o cacheck ca.c', ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY cacheck /usr/local/bin/\nENTRYPOINT ["/usr/local/bin/cacheck"]\n');
    const layout = join(dir, 'certs-oci');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${layout}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /added \/etc\/ssl\/certs\/ca-certificates\.crt \(cacheck names a system CA path\)/);
    umociUnpack(`${layout}:latest`, join(dir, 'certs-bundle'));
    assert.equal(runcRun(join(dir, 'certs-bundle')).stdout, 'bundle found\n');
    const off = join(dir, 'certs-off');
    const n = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '--no-scaffold', 'certs', '-o', `oci:${off}`]);
    assert.equal(n.status, 0, n.stderr);
    assert.doesNotMatch(n.stderr, /ca-certificates/);
    umociUnpack(`${off}:latest`, join(dir, 'certs-off-bundle'));
    assert.equal(runcRun(join(dir, 'certs-off-bundle')).stdout, 'no bundle\n');
  });

  it('Go hello world (CGO_ENABLED=0): prints Hello World, the image within 2% of the binary', () => {
    const ctx = join(dir, 'go');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'hello.go'), 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("Hello World")\n}\n');
    sh('go build -o hello hello.go', ctx, { CGO_ENABLED: '0', GOCACHE: join(dir, 'gocache'), HOME: dir, GOFLAGS: '' });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello /\nENTRYPOINT ["/hello"]\n');
    const layout = join(dir, 'go-oci');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${layout}`]);
    assert.equal(r.status, 0, r.stderr);
    umociUnpack(`${layout}:latest`, join(dir, 'go-bundle'));
    assert.equal(runcRun(join(dir, 'go-bundle')).stdout, 'Hello World\n');
    const bin = statSync(join(ctx, 'hello')).size;
    const blobs = readdirSync(join(layout, 'blobs/sha256')).reduce((n, b) => n + statSync(join(layout, 'blobs/sha256', b)).size, 0);
    const layers = JSON.parse(skopeo(['inspect', '--raw', `oci:${layout}:latest`])).layers as { digest: string }[];
    const uncompressed = layers.reduce((n, l) => n + Number(sh(`gzip -dc ${join(layout, 'blobs/sha256', l.digest.slice(7))} | wc -c`).trim()), 0);
    assert.ok(Math.abs(uncompressed - bin) / bin < 0.02, `layer ${uncompressed} bytes vs binary ${bin}`);
    assert.ok(blobs < bin * 1.02, `image ${blobs} bytes vs binary ${bin}`);
  });
});
