import { ElfFile, ReadOptions, readElfFile } from '../elf/reader.js';
import { indexRecordPath, memoByStat } from '../oci/cache.js';
import { codeStamp } from './build-memo.js';

/**
 * What readElfFile gave for a file, kept across runs in the cache directory: a build parses every library of its
 * programs' closures (the dynamic section, the version records and the imported symbols the rules look at: some
 * 0.5 ms each, about 6 ms for redis's sixteen), and its libraries seldom change between builds, where the program
 * often does; the program itself is parsed each time.
 *
 * Keyed, like the status index and the paths memo, on the file's stat identity (device, inode, size, mtime, ctime),
 * and on the code that parsed it (build-memo.ts codeStamp: another ocislim never uses these records); a file changed
 * within the last two seconds is not remembered. The stat is a journaled one, so a build memo sees the file as a
 * parse would. A file that is no ELF (an ElfError) is parsed again each time.
 *
 *   CACHE/dpkg/elfSV-HEX.json   S, V: symbols, versions read (1/0); HEX: sha256 of the file's host path
 *                               → { v, code, path, stamp, elf }
 */

/** Bump when what readElfFile gives changes in a way the code stamp would not show. */
const FORMAT = 1;

function recordPath(cacheDir: string, host: string, opts: ReadOptions): string {
  return indexRecordPath(cacheDir, `elf${opts.symbols ? 1 : 0}${opts.versions === false ? 0 : 1}-`, host);
}

/**
 * readElfFile, answered from the cache directory for a library parsed before under the same stat identity. A file
 * given rather than found (`found` false: the program, which a build that parses it again has most likely changed)
 * is parsed, and no record of it is kept.
 */
export function memoElfReader(cacheDir: string): (hostPath: string, opts: ReadOptions, name: string, found: boolean) => ElfFile {
  const valid = (v: unknown): v is ElfFile => !!v && typeof v === 'object';
  return (host, opts, name, found) => {
    if (!found) return readElfFile(host, opts, name);
    const elf = memoByStat(recordPath(cacheDir, host, opts), host, { v: FORMAT, code: codeStamp() }, 'elf', valid, () => readElfFile(host, opts, name));
    return { ...elf, name };
  };
}
