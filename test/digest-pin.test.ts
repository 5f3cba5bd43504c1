import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

/**
 * Pins the digests of images built from fixed inputs, so that a refactoring provably keeps the bytes.
 *
 * The builds read a root filesystem (--root) that the test makes: redis-server, busybox and what `ldd` says they
 * load, copied from the host with their symlink chains, and a loader configuration written here (so the host's own
 * /etc/ld.so.conf.d does not count). The programs and libraries change when Debian updates a package, so the
 * expected digests are keyed by a hash of that root (every path, symlink target, mode and content) plus the
 * architecture and Node's zlib version. An unknown key is a FAILURE that prints the key and this machine's digests:
 * the pin cannot silently stop checking. To add a machine, or to accept an intended change of output, put the
 * printed entry into test/digest-pins.json.
 */
const PINS = new URL('../../test/digest-pins.json', import.meta.url);
const EPOCH = '1700000000';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Fixed loader configuration, written by the test (the host's /etc/ld.so.conf.d differs between machines). */
const LD_SO_CONF: Record<string, string> = {
  '/etc/ld.so.conf': 'include /etc/ld.so.conf.d/*.conf\n',
  '/etc/ld.so.conf.d/libc.conf': '/usr/local/lib\n',
  '/etc/ld.so.conf.d/x86_64-linux-gnu.conf': '/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n',
};

/**
 * Copies `path` from the host into `root` as the host has it: every symlink on the way (directories such as /lib ->
 * usr/lib included) recreated with its target, the final file copied with its mode.
 */
function copyFromHost(path: string, root: string, depth = 0): void {
  if (depth > 40) throw new Error(`${path}: too many symlinks`);
  const parts = path.split('/').filter(Boolean);
  let host = '';
  for (let i = 0; i < parts.length; i++) {
    host += '/' + parts[i];
    const st = lstatSync(host);
    const inRoot = join(root, host);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(host);
      if (!existsSync(inRoot) && !isLink(inRoot)) {
        mkdirSync(dirname(inRoot), { recursive: true });
        symlinkSync(target, inRoot);
      }
      const resolved = posix.resolve(posix.dirname(host), target);
      return copyFromHost([resolved, ...parts.slice(i + 1)].join('/'), root, depth + 1);
    }
    if (i === parts.length - 1) {
      mkdirSync(dirname(inRoot), { recursive: true });
      if (!existsSync(inRoot)) {
        copyFileSync(host, inRoot);
        chmodSync(inRoot, st.mode & 0o7777);
      }
    }
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A root filesystem holding exactly the programs, what ldd says they load, and the fixed loader configuration. */
function makeRoot(root: string, programs: string[]): void {
  const paths = new Set<string>(programs);
  for (const p of programs) for (const m of run('ldd', [p]).stdout.matchAll(/(?:=> )?(\/\S+) \(0x/g)) paths.add(m[1]);
  for (const p of [...paths].sort()) copyFromHost(p, root);
  for (const [p, text] of Object.entries(LD_SO_CONF)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}

/** Every path in the root with its symlink target or mode and content hash; arch and Node's zlib version. */
function describeRoot(root: string): Record<string, string> {
  const d: Record<string, string> = { arch: process.arch, zlib: process.versions.zlib ?? '', epoch: EPOCH };
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = `${rel}/${name}`;
      const st = lstatSync(join(root, p));
      if (st.isSymbolicLink()) d[p] = `-> ${readlinkSync(join(root, p))}`;
      else if (st.isDirectory()) walk(p);
      else d[p] = `${(st.mode & 0o7777).toString(8)} ${sha(readFileSync(join(root, p)))}`;
    }
  };
  walk('');
  return d;
}

let dir: string;
before(() => {
  dir = tempDir('ocislim-pin-');
});
after(() => removeDir(dir));

function build(args: string[]): string {
  // Relative names: the base image's name goes into the manifest (org.opencontainers.image.base.name).
  const r = ocislim(['build', '--root', 'root', ...args], { cwd: dir, env: { SOURCE_DATE_EPOCH: EPOCH } });
  assert.equal(r.status, 0, `ocislim build ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('digest pin', () => {
  it('the redis image (and its variants) built from fixed inputs has the pinned digests', () => {
    const redis = '/usr/bin/redis-server';
    const root = join(dir, 'root');
    makeRoot(root, [redis, '/bin/busybox']);
    const desc = describeRoot(root);
    const key = sha(JSON.stringify(desc)).slice(0, 16);

    const got: Record<string, string> = {};
    got.redis = build([redis, '--expose', '6379', '-o', 'oci:redis']);
    got['redis-docker-1-layer'] = build([
      redis,
      '--layers', '1',
      '--format', 'docker',
      '--user', 'nonroot',
      '--env', 'A=b',
      '--workdir', '/data',
      '--label', 'x=y',
      '--stop-signal', 'SIGINT',
      '--cmd=["--port", "7000"]',
      '-o', 'oci-archive:redis.oci.tar',
      '-o', 'docker-archive:redis.docker.tar:ocislim/redis:pin',
    ]);
    got['oci-archive file'] = 'sha256:' + sha(readFileSync(join(dir, 'redis.oci.tar')));
    got['docker-archive file'] = 'sha256:' + sha(readFileSync(join(dir, 'redis.docker.tar')));
    got.busybox = build(['/bin/busybox', '-o', 'oci:base']);
    got['redis-on-busybox'] = build([redis, '--from', 'oci:base', '--expose', '6379', '-o', 'oci:on-base']);
    // The layer contents too, so that a mismatch tells a content change from a compression change.
    got['redis diff_ids'] = diffIds(join(dir, 'redis'));

    const pins = JSON.parse(readFileSync(PINS, 'utf8')) as Record<string, { inputs: string; digests: Record<string, string> }>;
    const entry = JSON.stringify({ [key]: { inputs: summary(desc), digests: got } }, null, 2);
    const pin = pins[key];
    assert.ok(pin, `no pinned digests for these inputs (key ${key}): this machine's programs, libraries or zlib differ from every pinned set. ` + `Check that the output is right, then add this entry to test/digest-pins.json:\n${entry}`);
    assert.deepEqual(got, pin.digests, `the images built from the inputs of key ${key} changed. If the change is intended, replace the entry in test/digest-pins.json with:\n${entry}`);
  });
});

/** The layer diff_ids of the image tagged latest in a layout, read with plain JSON (not with ocislim's reader). */
function diffIds(layout: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => JSON.parse(readFileSync(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const manifest = blob(index.manifests[0].digest);
  return blob(manifest.config.digest).rootfs.diff_ids.join(' ');
}

/** The package versions behind the inputs, for people reading the pin file. */
function summary(desc: Record<string, string>): string {
  const files = Object.keys(desc).filter((k) => k.startsWith('/') && !k.startsWith('/etc/') && !desc[k].startsWith('->'));
  const r = run('dpkg', ['-S', ...files.flatMap((f) => (f.startsWith('/usr/') ? [f, f.slice(4)] : [f]))]);
  const pkgs = new Set(r.stdout.split('\n').filter(Boolean).map((l) => l.split(/[:,]/)[0]));
  const v = run('dpkg-query', ['-W', '-f', '${Package}=${Version} ', ...pkgs]);
  return `${v.stdout.trim()} zlib=${desc.zlib} ${desc.arch}`;
}
