import { indexRecordPath, memoByStat } from '../../oci/cache.js';

/**
 * The absolute paths a file names (runtime.ts absolutePaths), kept across runs in the cache directory: the runtime
 * rule scans the program of every package-aware build for them, and a program is megabytes (redis-server: 2.4 MB,
 * read and scanned in a few ms), where the memo is one small JSON file.
 *
 * Keyed, like the status index, on the file's stat identity (device, inode, size, mtime, ctime): a file written in
 * place changes its ctime, a replaced one its inode, and ctime cannot be set by a user, so a memo is never served for
 * other bytes. A file changed within the last two seconds is not remembered (a second write within the same clock
 * tick would keep its stamp). The stat is a journaled one, so a build memo sees the file as a read would.
 *
 *   CACHE/dpkg/paths-HEX.json   sha256 of the file's host path → { v, path, stamp, paths }
 */

/** Bump when what absolutePaths finds changes. */
const FORMAT = 1;

function recordPath(cacheDir: string, host: string): string {
  return indexRecordPath(cacheDir, 'paths-', host);
}

/** `scan(host)`, or what it gave for the file with this very stat identity in an earlier run (no cache dir: scan). */
export function memoPaths(host: string, cacheDir: string | undefined, scan: (host: string) => string[]): string[] {
  if (!cacheDir) return scan(host);
  const valid = (v: unknown): v is string[] => Array.isArray(v) && v.every((p) => typeof p === 'string');
  return memoByStat(recordPath(cacheDir, host), host, { v: FORMAT }, 'paths', valid, () => scan(host));
}
