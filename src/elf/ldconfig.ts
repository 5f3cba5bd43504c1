import { posix } from 'node:path';
import { readFileSync } from 'node:fs';
import { RootFs } from './rootfs.js';

const MAX_INCLUDE_DEPTH = 16;

/**
 * The directories of ld.so.conf inside a root, in order, as ldconfig reads them (elf/ldconfig.c parse_conf):
 * "#" comments, "include" with one or more globs relative to the including file's directory, "hwcap" lines ignored,
 * trailing slashes stripped, directories that do not exist dropped. Include depth is capped and cycles are ignored.
 */
export function readLdSoConf(fs: RootFs, file = '/etc/ld.so.conf'): string[] {
  const dirs: string[] = [];
  const seen = new Set<string>();
  parse(fs, file, 0, dirs, seen);
  return [...new Set(dirs)];
}

function parse(fs: RootFs, file: string, depth: number, out: string[], seen: Set<string>): void {
  if (depth > MAX_INCLUDE_DEPTH || seen.has(file)) return;
  seen.add(file);
  const st = fs.stat(file);
  if (!st || !st.stats.isFile()) return;
  let text: string;
  try {
    text = readFileSync(fs.hostReal(st.located), 'utf8');
  } catch {
    return;
  }
  for (let line of text.split('\n')) {
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (!line) continue;
    const m = /^include[ \t]+(.*)$/.exec(line);
    if (m) {
      for (const pat of m[1].split(/[ \t]+/).filter(Boolean)) {
        const abs = pat.startsWith('/') ? pat : posix.join(posix.dirname(file), pat);
        for (const inc of fs.glob(abs)) parse(fs, inc, depth + 1, out, seen);
      }
      continue;
    }
    if (/^hwcap[ \t]/.test(line)) continue;
    // ldconfig also accepts "dir=TYPE"; the type is ignored here.
    const dir = line.replace(/=.*$/, '').replace(/\/+$/, '') || '/';
    if (dir.startsWith('/') && fs.isDirectory(dir)) out.push(dir);
  }
}
