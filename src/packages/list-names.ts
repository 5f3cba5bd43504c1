import { readFileSync } from 'node:fs';
import { indexRecordPath, writeIndexRecord } from '../oci/cache.js';

/**
 * Which packages' file lists (info/NAME.list) hold a path of a given last component, kept across runs in the cache
 * directory: for each package, a 32-bit hash of the last component of every path its list holds. A file that no
 * package names after its likely packages were read (a program built in the user's directory, given with root /)
 * then costs reading the lists of the few packages whose hashes match (a hash may match by chance: that only reads
 * one list more), instead of reading every list of the database (865 files here) to learn that none names it.
 *
 * The index stands for the lists as they were when it was made: it is keyed on the stat identities of the status
 * file and of the info directory, as dpkg keeps them (it rewrites the status file on every install, upgrade or
 * removal, and never writes a list in place: it writes NAME.list.new and renames it over NAME.list, and unlinks a
 * removed package's, each of which changes the directory's mtime and ctime), two stats where a stat of every list
 * (865 here) cost about 10 ms; it is made only while neither changed in the last two seconds. (A list edited in
 * place by hand, with neither the status file nor the directory changed, is not noticed.)
 *
 *   CACHE/dpkg/HEX.json   sha256 of the info directory's host path → { v, path, stamp, info, packages, hashes }
 */

const FORMAT = 2;

interface Record {
  v: number;
  /** The status file's host path and stat identity (what `ocislim cache prune` checks). */
  path: string;
  stamp: string;
  /** The info directory's stat identity. */
  info: string;
  /** Package keys (name:arch), and where each one's hashes end in `hashes`. */
  packages: string[];
  ends: number[];
  /** Little-endian uint32 hashes, base64. */
  hashes: string;
}

/** FNV-1a over the bytes (UTF-8, as lists hold them) of a path's last component. */
export function nameHash(b: Uint8Array, from = 0, to = b.length): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

function recordPath(cacheDir: string, infoHost: string): string {
  return indexRecordPath(cacheDir, 'names-', infoHost);
}

export interface ListNames {
  /** Keys (name:arch) of the packages whose lists may hold a path whose last component is one of `names`. */
  candidates(names: Iterable<string>): Set<string>;
}

export interface ListNamesKey {
  infoHost: string;
  statusHost: string;
  statusStamp: string;
  infoStamp: string;
}

/** The index made under this very key, else null. */
export function loadListNames(cacheDir: string, key: ListNamesKey): ListNames | null {
  let rec: Record;
  try {
    rec = JSON.parse(readFileSync(recordPath(cacheDir, key.infoHost), 'utf8')) as Record;
  } catch {
    return null;
  }
  if (!rec || rec.v !== FORMAT || rec.path !== key.statusHost || rec.stamp !== key.statusStamp || rec.info !== key.infoStamp) return null;
  if (!Array.isArray(rec.packages) || !Array.isArray(rec.ends) || rec.ends.length !== rec.packages.length || typeof rec.hashes !== 'string') return null;
  const bytes = Buffer.from(rec.hashes, 'base64');
  if (bytes.length % 4 || rec.ends[rec.ends.length - 1] !== bytes.length / 4) return null;
  const hashes = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return {
    candidates(names) {
      const want = new Set<number>();
      for (const n of names) want.add(nameHash(Buffer.from(n, 'utf8')));
      const out = new Set<string>();
      let start = 0;
      for (let k = 0; k < rec.packages.length; k++) {
        const end = rec.ends[k];
        for (let i = start; i < end; i++) {
          if (want.has(hashes[i])) {
            out.add(rec.packages[k]);
            break;
          }
        }
        start = end;
      }
      return out;
    },
  };
}

/** Makes and keeps the index from every list (package key → the list's bytes). An unwritable cache only costs time. */
export function saveListNames(cacheDir: string, key: ListNamesKey, lists: [string, Buffer][]): void {
  let n = 0;
  for (const [, b] of lists) for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
  const hashes = new Uint32Array(n + lists.length);
  const packages: string[] = [];
  const ends: number[] = [];
  let at = 0;
  for (const [pkg, b] of lists) {
    let slash = -1;
    for (let i = 0; i <= b.length; i++) {
      const c = i < b.length ? b[i] : 10;
      if (c === 47) slash = i;
      else if (c === 10) {
        if (slash >= 0 && slash < i - 1) hashes[at++] = nameHash(b, slash + 1, i);
        slash = -1;
      }
    }
    packages.push(pkg);
    ends.push(at);
  }
  const rec: Record = { v: FORMAT, path: key.statusHost, stamp: key.statusStamp, info: key.infoStamp, packages, ends, hashes: Buffer.from(hashes.buffer, 0, at * 4).toString('base64') };
  writeIndexRecord(recordPath(cacheDir, key.infoHost), rec);
}
