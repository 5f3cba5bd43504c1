import { BigIntStats, closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { indexRecordPath, writeIndexRecord } from '../oci/cache.js';
import { settled, stampOf } from '../oci/file-digests.js';

/**
 * A compact index of a dpkg status file, kept across runs in the cache directory: each package as the stanza reader
 * made it (name, architecture, versions, source, status) and its stanza's byte range. Opening a database then reads
 * 65 KB of JSON instead of scanning and checking the whole status file (800 KB for 865 packages); the file itself is
 * read (not scanned) when a stanza's text is first asked for.
 *
 * The index is keyed on the status file's stat identity (device, inode, size, mtime, ctime, as git's index and the
 * layer cache's file digests do): dpkg replaces the file on every change (rename of status-new), an edit in place
 * changes its size or times, and ctime cannot be set by a user, so an index is never served for another file. A file
 * changed within the last two seconds is not indexed (a second write in the same clock tick would keep its stamp).
 *
 *   CACHE/dpkg/HEX.json   sha256 of the status file's host path → { v, path, stamp, rows }
 */

/** Bump when what a record holds changes. */
const INDEX_FORMAT = 4;

/**
 * One stanza as its reader made it (valid: rows are only written for stanzas read without error): name,
 * architecture, version, source name, source version, Status, Status's state word, 1 for Multi-Arch: same (else 0),
 * and its bytes [start, end) in the file. A value equal to its default is kept as "" (a smaller file, fewer strings
 * to make on every run): the source as the package name, the source version as the version, Status and its state
 * word as "install ok installed" and "installed".
 */
export type IndexRow = [string, string, string, string, string, string, string, 0 | 1, number, number];

interface IndexRecord {
  v: number;
  path: string;
  stamp: string;
  rows: IndexRow[];
}

function recordPath(cacheDir: string, host: string): string {
  return indexRecordPath(cacheDir, '', host);
}

/** The stat identity of a status file (null: it cannot be stat'ed). */
export function statusStamp(host: string): { stamp: string; st: BigIntStats } | null {
  try {
    const st = statSync(host, { bigint: true });
    return { stamp: stampOf(st), st };
  } catch {
    return null;
  }
}

/** The index of the status file at `host` when one was made from the file with this very stamp; else null. */
export function loadStatusIndex(cacheDir: string, host: string, stamp: string): IndexRow[] | null {
  let rec: IndexRecord;
  try {
    rec = JSON.parse(readFileSync(recordPath(cacheDir, host), 'utf8')) as IndexRecord;
  } catch {
    return null;
  }
  if (!rec || rec.v !== INDEX_FORMAT || rec.path !== host || rec.stamp !== stamp || !Array.isArray(rec.rows)) return null;
  // The shape of each row (a loop over a thousand rows that runs once per process: plain and indexed).
  const rows = rec.rows;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Array.isArray(r) || r.length !== 10 || typeof r[0] !== 'string' || typeof r[6] !== 'string' || typeof r[8] !== 'number' || typeof r[9] !== 'number') return null;
  }
  return rows;
}

/** Keeps the index of a status file read under `stamp` (atomically; an unwritable cache only costs the next run). */
export function saveStatusIndex(cacheDir: string, host: string, stat: { stamp: string; st: BigIntStats }, rows: IndexRow[]): void {
  if (!settled(stat.st)) return;
  writeIndexRecord(recordPath(cacheDir, host), { v: INDEX_FORMAT, path: host, stamp: stat.stamp, rows } satisfies IndexRecord);
}

/**
 * A file's bytes (or those from `range.start` to `range.end`), read only while it is the file with `stamp` (the descriptor's own stat is compared, so a file
 * replaced meanwhile is noticed); null when it is not (changed, gone).
 */
export function readStamped(host: string, stamp: string, range?: { start: number; end: number }): Buffer | null {
  let fd: number;
  try {
    fd = openSync(host, 'r');
  } catch {
    return null;
  }
  try {
    if (stampOf(fstatSync(fd, { bigint: true })) !== stamp) return null;
    let b: Buffer;
    if (range) {
      b = Buffer.alloc(range.end - range.start);
      for (let at = 0; at < b.length; ) {
        const n = readSync(fd, b, at, b.length - at, range.start + at);
        if (n <= 0) return null;
        at += n;
      }
    } else b = readFileSync(fd);
    return stampOf(fstatSync(fd, { bigint: true })) === stamp ? b : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
