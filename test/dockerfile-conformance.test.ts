import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from './helpers/cli.js';
import { readImageDir, TreeEntry } from './helpers/image-tree.js';
import { removeDir, sh } from './helpers/sh.js';
import { tmpdir } from 'node:os';

/**
 * The same RUN-less Dockerfiles built by buildah (`bud --format docker`, vfs storage of its own) and by ocislim
 * (--no-scaffold --no-rules --no-sbom), on the same bases: the config fields and the unpacked file trees must match.
 * Where docker and buildah differ (README, "The Dockerfile subset"), the corpus stays on common ground, and the
 * one normalisation below says which difference it absorbs.
 */

let dir: string;
let ctx: string;
let ign: string;
const M = () => `oci:${join(dir, 'base-merged')}:latest`;
const P = () => `oci:${join(dir, 'base-plain')}:latest`;

function exec(cmd: string, args: string[], cwd?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

before(() => {
  // Lower case only: buildah reads oci:DIR paths as image names, which may not hold capitals.
  dir = join(tmpdir(), `ocislim-conformance-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(dir);
  // Base 1: busybox-static on a merged-/usr layout (/bin -> usr/bin), users and groups, a base WorkingDir.
  const root = join(dir, 'rootfs-merged');
  sh(
    `mkdir -p usr/bin usr/sbin usr/lib usr/share/doc etc srv home/app data
     cp /bin/busybox usr/bin/busybox && ln -s busybox usr/bin/sh
     ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib
     ln -s /usr/share/doc usr/share/link-dir
     printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\nsvc:x:1600:1700::/srv:/bin/sh\\n' > etc/passwd
     printf 'root:x:0:\\napp:x:1000:\\ngrp:x:2000:\\nsvcg:x:1700:\\n' > etc/group
     chown 1000:1000 home/app && chmod 0750 home/app && chmod 1777 data
     tar --numeric-owner -cf ../merged.tar .`,
    (mkdirSync(root), root),
  );
  sh(
    `${process.execPath} ${BIN} build --add ${dir}/merged.tar:/ --env PATH=/usr/bin:/bin --env BASE=basevalue --workdir /srv --cmd sh --label base.label=1 --expose 22 --no-scaffold --no-rules --no-sbom --no-verify -o oci:${dir}/base-merged`,
  );
  // Base 2: no PATH in its Env, WorkingDir /data.
  const plain = join(dir, 'rootfs-plain');
  sh(`mkdir -p data etc && echo plain > etc/motd && tar --numeric-owner -cf ../plain.tar .`, (mkdirSync(plain), plain));
  sh(`${process.execPath} ${BIN} build --add ${dir}/plain.tar:/ --env FOO=bar --workdir /data --no-scaffold --no-rules --no-sbom --no-verify -o oci:${dir}/base-plain`);
  // The build context.
  ctx = join(dir, 'ctx');
  sh(
    `mkdir -p d/sub bin docs arch/opt/arch
     echo a > a.txt && echo b > b.txt && echo c > c.md && echo x > d/x && echo y > d/sub/y
     printf '#!/bin/sh\\necho tool\\n' > bin/tool && chmod 755 bin/tool
     ln -s x d/link && ln -s /etc/hostname d/abs && ln -s a.txt rel && ln -s d dirlink
     echo secret > mode600 && chmod 600 mode600
     echo f > arch/opt/arch/f && tar --numeric-owner --owner=0 --group=0 -C arch -czf archive.tar.gz opt && rm -rf arch
     echo 'plain add' > plain.txt`,
    (mkdirSync(ctx), ctx),
  );
  // A context with a .dockerignore (exceptions inside an excluded directory).
  ign = join(dir, 'ign');
  sh(
    `mkdir -p docs/more src && echo k > docs/keep.md && echo n > docs/no.md && echo m > docs/more/m.md && echo s > src/main.c && echo l > debug.log && echo r > README.md
     printf 'docs\\n!docs/keep.md\\n*.log\\n' > .dockerignore`,
    (mkdirSync(ign), ign),
  );
});

after(() => {
  if (dir) removeDir(dir);
});

interface Case {
  name: string;
  dockerfile: string;
  context?: 'ctx' | 'ign';
  buildArgs?: string[];
  target?: string;
}

const CASES: Case[] = [
  { name: 'copy-into-workdir-dot', dockerfile: 'FROM @M\nWORKDIR /app\nCOPY a.txt .\nCOPY b.txt /app\n' },
  { name: 'workdir-creates', dockerfile: 'FROM @M\nWORKDIR /w1/w2\nWORKDIR rel/sub\n' },
  { name: 'merged-usr-follow', dockerfile: 'FROM @M\nCOPY bin/tool /bin/tool\nCOPY a.txt /bin/\nCOPY b.txt /sbin/b\n' },
  { name: 'dest-symlink-to-dir', dockerfile: 'FROM @M\nCOPY a.txt /usr/share/link-dir\nCOPY b.txt /usr/share/link-dir/\n' },
  { name: 'inherited-env-workdir', dockerfile: 'FROM @M\nENV PATH=$PATH:/opt/app/bin APPDIR=${BASE}/x\nWORKDIR sub\nCOPY a.txt rel1\n' },
  { name: 'env-substitution', dockerfile: 'FROM @M\nENV A=1 B=$A\nENV C=\'single $A\' D=\\$HOME E="dq \\$A \\"x\\"" F=esc\\ aped G=${A}${A}\nENV LEG  a   b  "c d"\nENV ONE TWO= THREE=x\n' },
  { name: 'env-modifiers', dockerfile: 'FROM @M\nENV SET=v EMPTY=\nENV R1=${SET:-d} R2=${UNSET:-d} R3=${SET:+alt} R4=${UNSET:+alt} R5=${EMPTY:-e}\n' },
  { name: 'continuations', dockerfile: 'FROM @M\nLABEL b="x \\\n   y"\nENV A=foo\\\nbar\nENV C="x\\\n  # a comment\n  y"\nLABEL multi=1 \\\n\n      other=2\n' },
  { name: 'arg-scoping', dockerfile: 'ARG V=global\nARG ONLY=g\nFROM @M\nENV X=${V}\nARG V\nENV Y=${V} Z=${ONLY}\n' },
  { name: 'arg-build-arg', dockerfile: 'ARG V=global\nFROM @M\nARG V\nARG W=dflt\nARG N\nENV V=$V W=$W N=${N:-none}\n', buildArgs: ['V=cli', 'W=fromcli'] },
  { name: 'env-after-arg-wins', dockerfile: 'FROM @M\nARG S=arg\nLABEL s=$S\nENV S=env2\nLABEL t=$S\n' },
  { name: 'automatic-platform-args', dockerfile: 'FROM @M\nARG TARGETARCH\nARG TARGETOS\nARG TARGETPLATFORM\nARG BUILDARCH\nENV T=$TARGETOS/$TARGETARCH P=$TARGETPLATFORM B=$BUILDARCH\nCOPY a.txt /arch/${TARGETARCH}/a\n' },
  { name: 'maintainer-user-stopsignal', dockerfile: 'FROM @M\nMAINTAINER Jane Doe <jane@example.com>\nUSER app:grp\nSTOPSIGNAL SIGINT\n' },
  { name: 'healthcheck-shell', dockerfile: 'FROM @M\nHEALTHCHECK --interval=5m --timeout=3s --retries=4 CMD wget -q -O /dev/null http://localhost/ || exit 1\n' },
  { name: 'healthcheck-exec', dockerfile: 'FROM @M\nHEALTHCHECK --interval=30s --start-period=1m30s CMD ["/bin/busybox", "true"]\n' },
  { name: 'healthcheck-none', dockerfile: 'FROM @M\nHEALTHCHECK CMD ["true"]\nHEALTHCHECK NONE\n' },
  { name: 'cmd-shell-form', dockerfile: 'FROM @M\nCMD echo "hello $HOME" && ls\n' },
  { name: 'entrypoint-resets-cmd', dockerfile: 'FROM @M\nENTRYPOINT ["/bin/busybox"]\n' },
  { name: 'cmd-then-entrypoint', dockerfile: 'FROM @M\nCMD ["ls", "-l"]\nENTRYPOINT ["/bin/busybox"]\n' },
  { name: 'entrypoint-shell-form', dockerfile: 'FROM @M\nENTRYPOINT exec busybox httpd -f\nCMD ["ignored"]\n' },
  { name: 'expose-volume-label', dockerfile: 'FROM @M\nARG P=8080\nEXPOSE 80 443/tcp 53/udp $P\nVOLUME ["/data", "/cache"]\nVOLUME /logs /more\nLABEL a=1 "b c"="d e" base.label=2\n' },
  { name: 'wildcards', dockerfile: 'FROM @M\nCOPY *.txt /dst/\nCOPY ?.md /md/\nCOPY d/s* /sub/\n' },
  { name: 'several-sources', dockerfile: 'FROM @M\nCOPY a.txt b.txt c.md /multi/\nCOPY ["a.txt", "d", "/json/"]\n' },
  { name: 'copy-directory', dockerfile: 'FROM @M\nCOPY d /dd\nCOPY d/ /dd2/\n' },
  { name: 'copy-into-existing-dir', dockerfile: 'FROM @M\nCOPY d /home/app/\nCOPY a.txt /data\n' },
  { name: 'chown-names', dockerfile: 'FROM @M\nCOPY --chown=app:grp a.txt /new/deep/a\nCOPY --chown=svc d /svcdir/\nCOPY --chown=app a.txt /home/app/a\n' },
  { name: 'chown-numbers', dockerfile: 'FROM @M\nCOPY --chown=1500 a.txt /n/a\nCOPY --chown=1500:1600 d /n2\nCOPY --chown=root:grp b.txt /n3/b\n' },
  { name: 'chmod-link', dockerfile: 'FROM @M\nCOPY --chmod=0600 a.txt /m/a\nCOPY --chmod=755 d /m/d\nCOPY b.txt /l/b\n' },
  { name: 'symlink-sources', dockerfile: 'FROM @M\nCOPY rel /z/\nCOPY dirlink/x /z/x-through-link\nCOPY dirlink /z/dircontents\n' },
  { name: 'add-archive-and-file', dockerfile: 'FROM @M\nADD archive.tar.gz /\nADD archive.tar.gz /unpacked/\nADD plain.txt /p/\nADD --chmod=640 mode600 /p/m\n' },
  { name: 'multi-stage-copy-from', dockerfile: 'FROM scratch AS files\nCOPY d /stuff\nCOPY --chown=7:8 a.txt /owned\nFROM @M\nCOPY --from=files /stuff /from-stage\nCOPY --from=files /owned /owned\nCOPY --from=0 /stuff/x /x-by-index\n' },
  { name: 'multi-stage-chain', dockerfile: 'FROM @M AS base\nENV ONE=1\nCOPY a.txt /a\nFROM base AS mid\nENV TWO=$ONE$ONE\nCOPY b.txt /b\nFROM mid\nLABEL final=yes\n' },
  { name: 'target-stage', dockerfile: 'FROM @M AS first\nCOPY a.txt /first\nENV STAGE=first\nFROM scratch\nCOPY b.txt /second\n', target: 'first' },
  { name: 'copy-from-base-stage', dockerfile: 'FROM @M AS sys\nFROM scratch\nCOPY --from=sys /etc/passwd /etc/group /etc/\nCOPY --from=sys /usr/bin/busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' },
  { name: 'copy-from-image', dockerfile: 'FROM scratch\nCOPY --from=@P /etc/motd /motd\nCOPY --from=@M /home /homes/\nCOPY --from=@M /bin/sh /sh-through-link\n' },
  { name: 'config-only-child', dockerfile: 'FROM @M\nENV MODE=prod\nCMD ["busybox", "httpd", "-f"]\n' },
  { name: 'dockerignore-exceptions', dockerfile: 'FROM @M\nCOPY . /ctx/\n', context: 'ign' },
  { name: 'user-then-workdir', dockerfile: 'FROM @M\nUSER app\nWORKDIR /home/app/work\nUSER 1500\nWORKDIR /numeric\n' },
  { name: 'escape-directive', dockerfile: '# escape=`\nFROM @M\nENV W=C:/path `\n    V=2\n' },
  { name: 'plain-base-no-path', dockerfile: 'FROM @P\nENV X=$FOO-$PATH\nCOPY a.txt rel\nCOPY b.txt ./\n' },
  { name: 'scratch', dockerfile: 'FROM scratch\nCOPY --chmod=755 bin/tool /tool\nCOPY d /\nENV A=1\nLABEL kind=scratch\n' },
];

/** The config fields the issue names; empty lists and maps count as unset (buildah writes "Cmd": []). */
function fields(cfg: Record<string, unknown>): Record<string, unknown> {
  const c = (cfg.config ?? {}) as Record<string, unknown>;
  const empty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && !v.length) || (typeof v === 'object' && !Array.isArray(v) && !Object.keys(v as object).length) || v === '';
  const out: Record<string, unknown> = {};
  for (const k of ['Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck']) {
    let v = c[k];
    // BuildKit sets WorkingDir "/" on FROM scratch, buildah leaves it empty: the same to a runtime.
    if (k === 'WorkingDir' && v === '/') v = '';
    // buildah moves a redefined variable to the end of Env; BuildKit replaces it where it stands (README).
    if (k === 'Env' && Array.isArray(v)) v = [...v].sort();
    if (!empty(v)) out[k] = v;
  }
  if (!empty(cfg.author)) out.author = cfg.author;
  return out;
}

function treeObject(t: Map<string, TreeEntry>): Record<string, TreeEntry> {
  return Object.fromEntries([...t.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('Dockerfile conformance with buildah', () => {
  it(`${CASES.length} RUN-less Dockerfiles: config fields and file trees equal buildah's`, async () => {
    assert.ok(CASES.length >= 30);
    const store = join(dir, 'buildah');
    const dfs = join(dir, 'dockerfiles');
    mkdirSync(dfs);
    mkdirSync(join(dir, 'out-buildah'));
    mkdirSync(join(dir, 'out-ocislim'));
    const buildahArgs = ['--root', join(store, 'root'), '--runroot', join(store, 'runroot'), '--storage-driver', 'vfs'];
    const one = async (c: Case) => {
      const file = join(dfs, `${c.name}.Dockerfile`);
      writeFileSync(file, c.dockerfile.replaceAll('@M', M()).replaceAll('@P', P()));
      const context = c.context === 'ign' ? ign : ctx;
      const extra = [...(c.buildArgs ?? []).flatMap((b) => ['--build-arg', b]), ...(c.target ? ['--target', c.target] : [])];
      const bdir = join(dir, 'out-buildah', c.name);
      const b = await exec('buildah', [...buildahArgs, 'bud', '--format', 'docker', '--identity-label=false', '-q', '-f', file, '-t', `dir:${bdir}`, ...extra, context]);
      assert.equal(b.status, 0, `buildah ${c.name}: ${b.stderr}`);
      const odir = join(dir, 'out-ocislim', c.name);
      const o = await exec(process.execPath, [BIN, 'build', '-f', file, context, ...extra, '--no-scaffold', '--no-rules', '--no-sbom', '-o', `oci:${odir}`]);
      assert.equal(o.status, 0, `ocislim ${c.name}: ${o.stderr}`);
      const want = readImageDir(bdir);
      const got = readImageDir(odir);
      assert.deepEqual(fields(got.config), fields(want.config), `${c.name}: config\n${c.dockerfile}`);
      assert.deepEqual(treeObject(got.tree), treeObject(want.tree), `${c.name}: file tree\n${c.dockerfile}`);
    };
    // A few at a time: buildah's vfs copies whole trees, and the machine is shared.
    const queue = [...CASES];
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          try {
            await one(c);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
      }),
    );
    assert.deepEqual(failures, []);
  });
});
