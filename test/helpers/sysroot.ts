import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh } from './sh.js';

/**
 * A foreign-architecture sysroot made the way a user would: `apt-get download PKG:ARCH` and `dpkg -x`. Needs the
 * architecture enabled in apt (.ci/run does `dpkg --add-architecture arm64` before `apt-get update`). Cached per
 * package set in the temp directory.
 */
export function debianSysroot(arch: string, packages: string[]): string {
  const key = `ocislim-sysroot-${arch}-${packages.join('_').replace(/[^a-z0-9_.-]/gi, '')}`;
  const root = join(tmpdir(), key);
  if (existsSync(join(root, '.complete'))) return root;
  const work = `${root}.partial-${process.pid}`;
  mkdirSync(join(work, 'debs'), { recursive: true });
  try {
    sh(`apt-get download ${packages.map((p) => `${p}:${arch}`).join(' ')}`, join(work, 'debs'));
  } catch (e) {
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
