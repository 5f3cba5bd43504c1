import { posix } from 'node:path';
import { ElfError } from './errors.js';
import { readRootText } from './rootfile.js';
import { RootFs } from './rootfs.js';

/** Limits for a hostile root: nesting, files read in all, bytes per file (Debian's whole set is about 10 files). */
export const LD_SO_CONF_LIMITS = { depth: 16, files: 1024, bytes: 1 << 20, globMatches: 4096 };

/**
 * The directories of ld.so.conf inside a root, in order, as ldconfig reads them (elf/ldconfig.c parse_conf):
 * "#" comments, "include" with one or more globs relative to the including file's directory, "hwcap" lines ignored,
 * trailing slashes stripped, directories that do not exist dropped. A file met again (by its real path, however
 * it was reached) is skipped, so cycles end; nesting, the number of files, their size and the paths one include glob
 * may match are capped, each excess an ElfError naming the file (a FIFO or device is one too).
 */
export function readLdSoConf(fs: RootFs, file = '/etc/ld.so.conf'): string[] {
  const dirs: string[] = [];
  const seen = new Set<string>();
  parse(fs, file, 0, dirs, seen);
  return [...new Set(dirs)];
}

function parse(fs: RootFs, file: string, depth: number, out: string[], seen: Set<string>): void {
  const L = LD_SO_CONF_LIMITS;
  if (depth > L.depth) throw new ElfError(file, `ld.so.conf includes nested deeper than ${L.depth}`);
  const st = fs.stat(file);
  if (!st) return;
  if (seen.has(st.located.realPath)) return;
  if (seen.size >= L.files) throw new ElfError(file, `ld.so.conf includes more than ${L.files} files`);
  seen.add(st.located.realPath);
  if (st.stats.isDirectory()) return;
  const text = readRootText(fs.hostReal(st.located), file, L.bytes);
  for (let line of text.split('\n')) {
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (!line) continue;
    const m = /^include[ \t]+(.*)$/.exec(line);
    if (m) {
      for (const pat of m[1].split(/[ \t]+/).filter(Boolean)) {
        const abs = pat.startsWith('/') ? pat : posix.join(posix.dirname(file), pat);
        let matches: string[];
        try {
          matches = fs.glob(abs, L.globMatches);
        } catch (e) {
          if (e instanceof RangeError) throw new ElfError(file, `include ${pat} matches more than ${L.globMatches} paths`);
          throw e;
        }
        for (const inc of matches) parse(fs, inc, depth + 1, out, seen);
      }
      continue;
    }
    if (/^hwcap[ \t]/.test(line)) continue;
    // ldconfig also accepts "dir=TYPE"; the type is ignored here.
    const dir = line.replace(/=.*$/, '').replace(/\/+$/, '') || '/';
    if (dir.startsWith('/') && fs.isDirectory(dir)) out.push(dir);
  }
}
