import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh } from './sh.js';

/**
 * Where sysroots are kept between runs: $OCISLIM_TEST_CACHE, else /var/cache/ocislim-test when it can be made,
 * else the temp directory.
 */
function cacheDir(): string {
  for (const d of [process.env.OCISLIM_TEST_CACHE, '/var/cache/ocislim-test']) {
    if (!d) continue;
    try {
      mkdirSync(d, { recursive: true });
      accessSync(d, constants.W_OK);
      return d;
    } catch {
      /* next */
    }
  }
  return tmpdir();
}

/**
 * What decides the package versions apt-get download picks: the package lists (their names, sizes and mtimes
 * change with every apt-get update that brings new versions). Cheap, unlike asking apt for each version.
 */
function listsKey(): string {
  const h = createHash('sha256');
  const dir = '/var/lib/apt/lists';
  try {
    for (const f of readdirSync(dir).filter((f) => f.endsWith('Packages') || f.endsWith('Packages.lz4') || f.endsWith('Packages.gz') || f.endsWith('Packages.xz')).sort()) {
      const st = statSync(join(dir, f));
      h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
    }
  } catch {
    /* no lists: the key is the package names alone */
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * A foreign-architecture sysroot made the way a user would: `apt-get download PKG:ARCH` and `dpkg -x`. Needs the
 * architecture enabled in apt (.ci/run does `dpkg --add-architecture arm64` before `apt-get update`). Cached per
 * package set and package lists (so per versions), reused across runs.
 */
export function debianSysroot(arch: string, packages: string[]): string {
  const names = packages.join('_').replace(/[^a-z0-9_.+-]/gi, '');
  const key = `ocislim-sysroot-${arch}-${createHash('sha256').update(names).digest('hex').slice(0, 12)}-${listsKey()}`;
  const root = join(cacheDir(), key);
  if (existsSync(join(root, '.complete'))) return root;
  const work = `${root}.partial-${process.pid}`;
  mkdirSync(join(work, 'debs'), { recursive: true });
  try {
    sh(`apt-get download ${packages.map((p) => `${p}:${arch}`).join(' ')}`, join(work, 'debs'));
  } catch (e) {
    sh(`rm -rf '${work}'`);
    throw new Error(
      `could not download ${arch} packages (is the ${arch} architecture enabled? run: dpkg --add-architecture ${arch} && apt-get update): ${(e as Error).message}`,
    );
  }
  mkdirSync(join(work, 'root'));
  for (const deb of readdirSync(join(work, 'debs'))) sh(`dpkg -x '${deb}' ../root`, join(work, 'debs'));
  sh(`touch root/.complete`, work);
  sh(`rm -rf '${root}'`);
  renameSync(join(work, 'root'), root);
  sh(`rm -rf '${work}'`);
  return root;
}
