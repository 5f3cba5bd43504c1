import { readFileSync, rmSync } from 'node:fs';
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
 *   CACHE/dpkg/namesS-HEX.json   shard S (0-f) of the index; HEX: sha256 of the info directory's host path
 *                                → { v, path, stamp, info, shard, packages, hashes, owners }
 */

const FORMAT = 3;

/**
 * The index is kept in SHARDS records, by the top bits of the names' hashes: a lookup of a few names reads one or two
 * records of some 50 KB, not the whole index (about 800 KB of JSON for 865 lists, 5 ms to read and decode). Each
 * record holds the key it was made under, so records of different makings are never mixed.
 */
const SHARD_BITS = 4;
const SHARDS = 1 << SHARD_BITS;

interface Record {
  v: number;
  /** The status file's host path and stat identity (what `ocislim cache prune` checks). */
  path: string;
  stamp: string;
  /** The info directory's stat identity. */
  info: string;
  /** Which shard this is (the top SHARD_BITS bits of its hashes). */
  shard: number;
  /** Package keys (name:arch) this shard names. */
  packages: string[];
  /** Little-endian uint32 hashes in ascending order, base64, each with the index in `packages` of a list naming it. */
  hashes: string;
  /** Little-endian uint16 indexes into `packages`, base64, one per hash. */
  owners: string;
}

/** FNV-1a over the bytes (UTF-8, as lists hold them) of a path's last component. */
export function nameHash(b: Uint8Array, from = 0, to = b.length): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

function recordPath(cacheDir: string, infoHost: string, shard: number): string {
  return indexRecordPath(cacheDir, `names${shard.toString(16)}-`, infoHost);
}

export interface ListNamesKey {
  infoHost: string;
  statusHost: string;
  statusStamp: string;
  infoStamp: string;
}

/** The typed array a base64 string holds, or null when its length does not fit. */
function decode<T>(b64: string, width: number, make: (b: ArrayBuffer, n: number) => T): T | null {
  const b = Buffer.from(b64, 'base64');
  if (b.length % width) return null;
  return make(b.buffer.slice(b.byteOffset, b.byteOffset + b.length), b.length / width);
}

/**
 * Keys (name:arch) of the packages whose lists may hold a path whose last component is one of `names`, from the
 * index made under this very key; null when there is none (or a record of it is missing or damaged).
 */
export function listNamesCandidates(cacheDir: string, key: ListNamesKey, names: Iterable<string>): Set<string> | null {
  const want = new Map<number, number[]>();
  for (const n of names) {
    const h = nameHash(Buffer.from(n, 'utf8'));
    const shard = h >>> (32 - SHARD_BITS);
    const l = want.get(shard);
    if (l) l.push(h);
    else want.set(shard, [h]);
  }
  const out = new Set<string>();
  for (const [shard, hs] of want) {
    let rec: Record;
    try {
      rec = JSON.parse(readFileSync(recordPath(cacheDir, key.infoHost, shard), 'utf8')) as Record;
    } catch {
      return null;
    }
    if (!rec || rec.v !== FORMAT || rec.shard !== shard || rec.path !== key.statusHost || rec.stamp !== key.statusStamp || rec.info !== key.infoStamp) return null;
    if (!Array.isArray(rec.packages) || typeof rec.hashes !== 'string' || typeof rec.owners !== 'string') return null;
    const hashes = decode(rec.hashes, 4, (b, n) => new Uint32Array(b, 0, n));
    const owners = decode(rec.owners, 2, (b, n) => new Uint16Array(b, 0, n));
    if (!hashes || !owners || hashes.length !== owners.length) return null;
    for (const h of hs) {
      // The first entry of hash h (ascending order), then every entry of it.
      let lo = 0;
      let hi = hashes.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid] < h) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < hashes.length && hashes[i] === h; i++) {
        const pkg = rec.packages[owners[i]];
        if (typeof pkg !== 'string') return null;
        out.add(pkg);
      }
    }
  }
  return out;
}

/** Makes and keeps the index from every list (package key → the list's bytes). An unwritable cache only costs time. */
export function saveListNames(cacheDir: string, key: ListNamesKey, lists: [string, Buffer][]): void {
  if (lists.length > 65536) return;
  // Per shard: every (hash, list) pair once, as hash * 2^16 + list (exact in a double: 48 bits), sorted.
  const pairs: Set<number>[] = Array.from({ length: SHARDS }, () => new Set<number>());
  lists.forEach(([, b], k) => {
    let slash = -1;
    for (let i = 0; i <= b.length; i++) {
      const c = i < b.length ? b[i] : 10;
      if (c === 47) slash = i;
      else if (c === 10) {
        if (slash >= 0 && slash < i - 1) {
          const h = nameHash(b, slash + 1, i);
          pairs[h >>> (32 - SHARD_BITS)].add(h * 65536 + k);
        }
        slash = -1;
      }
    }
  });
  for (let shard = 0; shard < SHARDS; shard++) {
    const sorted = Float64Array.from(pairs[shard]).sort();
    const packages: string[] = [];
    const local = new Map<number, number>();
    const hashes = new Uint32Array(sorted.length);
    const owners = new Uint16Array(sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      const k = sorted[i] % 65536;
      hashes[i] = (sorted[i] - k) / 65536;
      let at = local.get(k);
      if (at === undefined) {
        at = packages.push(lists[k][0]) - 1;
        local.set(k, at);
      }
      owners[i] = at;
    }
    const rec: Record = {
      v: FORMAT,
      path: key.statusHost,
      stamp: key.statusStamp,
      info: key.infoStamp,
      shard,
      packages,
      hashes: Buffer.from(hashes.buffer).toString('base64'),
      owners: Buffer.from(owners.buffer).toString('base64'),
    };
    writeIndexRecord(recordPath(cacheDir, key.infoHost, shard), rec);
  }
  // The single record of the index's earlier format, if any.
  try {
    rmSync(indexRecordPath(cacheDir, 'names-', key.infoHost), { force: true });
  } catch {
    /* read-only cache */
  }
}
