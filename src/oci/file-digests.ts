import { BigIntStats, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { Digest, hashFileSync, isDigest } from './digest.js';

/**
 * File content digests memoized by (device, inode, size, mtime, ctime), as git's index does: a file whose stat
 * identity is unchanged is not read again. ctime changes on every write, rename and chmod, and cannot be set by a
 * user, so an unchanged identity means unchanged bytes. Files changed within the last seconds are hashed but not
 * remembered ("racily clean" in git's words: a second write in the same clock tick would not show in the stat).
 */

/** [dev, ino, size, mtimeNs, ctimeNs, digest, md5 (when it was asked for)] */
type Row = [string, string, number, string, string, Digest, string?];

const RACY_NS = 2_000_000_000n;

/**
 * Whether a file's stat is old enough to key a record on (neither mtime nor ctime within the last two seconds): a file
 * written in the same clock tick as a later write would keep its stamp ("racily clean", in git's words).
 */
export function settled(st: BigIntStats, nowNs = BigInt(Date.now()) * 1_000_000n): boolean {
  return nowNs - st.mtimeNs > RACY_NS && nowNs - st.ctimeNs > RACY_NS;
}
/** Rows kept at most; when over, only the rows this process used are kept. */
const MAX_ROWS = 200_000;

/** A file's identity and content digest, as used in a layer key. */
export interface FileIdentity {
  digest: Digest;
  /** The stat identity the digest was taken under; compared again after the file was streamed into the layer. */
  stamp: string;
  /**
   * Taken from a file written within the last seconds: a second write in the same clock tick would keep the stamp,
   * so the stamp does not vouch for the bytes (a reader of the file again checks them against `digest`).
   */
  racy?: true;
}

/** A file's hashes, all taken in one read: sha256 always, md5 and sha1 when asked for. */
export interface FileHashes extends FileIdentity {
  size: number;
  md5?: string;
  sha1?: string;
}

const MD5_RE = /^[a-f0-9]{32}$/;

export function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * Within one process, each file is read at most once whatever asks (the package inventory wants md5s, the layer
 * cache sha256s): the hashes are kept by path and stat identity. A `file` of null keeps nothing on disk.
 */
export class FileDigests {
  private rows: Record<string, Row> = {};
  private used = new Set<string>();
  private changed = false;
  private seen = new Map<string, FileHashes>();

  constructor(private readonly file: string | null) {
    if (!file) return;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { v: number; rows: Record<string, Row> };
      if (parsed?.v === 1 && parsed.rows && typeof parsed.rows === 'object') this.rows = parsed.rows;
    } catch {
      /* none yet, or unreadable: start empty */
    }
  }

  /** The content digest of a host file, from the memo when its identity is unchanged, else by reading it. */
  async digest(path: string): Promise<FileIdentity> {
    const h = this.hashes(path);
    return { digest: h.digest, stamp: h.stamp, ...(h.racy ? { racy: true as const } : {}) };
  }

  /**
   * sha256 (and md5, sha1 when asked for) of a host file, all in one read, or from this process's earlier read or
   * the memo when the file's identity is unchanged. A file that changed while being read gets the stamp "changed"
   * and is remembered nowhere.
   */
  hashes(path: string, want: { md5?: boolean; sha1?: boolean } = {}): FileHashes {
    const st = statSync(path, { bigint: true });
    const known = this.known(path, st, want);
    if (known) return known;
    const algs = ['sha256', ...(want.md5 ? ['md5'] : []), ...(want.sha1 ? ['sha1'] : [])];
    const { hex, size } = hashFileSync(path, algs);
    const h: FileHashes = { digest: 'sha256:' + hex[0], stamp: stampOf(st), size };
    if (want.md5) h.md5 = hex[1];
    if (want.sha1) h.sha1 = hex[algs.indexOf('sha1')];
    return this.keep(path, st, h);
  }

  /**
   * The hashes of a file whose stat is `st`, when this process took them before or the memo holds them (under the
   * same identity, with md5 and sha1 when asked for); else null (the file must be read).
   */
  known(path: string, st: BigIntStats, want: { md5?: boolean; sha1?: boolean } = {}): FileHashes | null {
    const stamp = stampOf(st);
    this.used.add(path);
    const had = this.seen.get(path);
    if (had && had.stamp === stamp && (!want.md5 || had.md5) && (!want.sha1 || had.sha1)) return had;
    const row = this.rows[path];
    if (!want.sha1 && row && row[0] === String(st.dev) && row[1] === String(st.ino) && row[2] === Number(st.size) && row[3] === String(st.mtimeNs) && row[4] === String(st.ctimeNs) && isDigest(row[5])) {
      const md5 = row[6] && MD5_RE.test(row[6]) ? row[6] : undefined;
      if (!want.md5 || md5) {
        const h: FileHashes = { digest: row[5], stamp, size: row[2], ...(md5 ? { md5 } : {}) };
        this.seen.set(path, h);
        return h;
      }
    }
    return null;
  }

  /**
   * Hashes taken by reading the file whose stat was `st` before the read (`h.stamp` is its stamp): kept, unless the
   * file changed while being read (then they come back with the stamp "changed" and are remembered nowhere).
   */
  keep(path: string, st: BigIntStats, h: FileHashes): FileHashes {
    // Changed while being read: usable for nothing (the caller sees the stamp differ later and skips the cache).
    if (stampOf(statSync(path, { bigint: true })) !== h.stamp || h.size !== Number(st.size)) return { ...h, stamp: 'changed' };
    this.used.add(path);
    // A file written in the last seconds may be written again within the same clock tick (same stamp, other bytes):
    // it is read again whenever asked, as git does with racily clean entries.
    if (!settled(st)) return { ...h, racy: true };
    this.seen.set(path, h);
    this.rows[path] = [String(st.dev), String(st.ino), Number(st.size), String(st.mtimeNs), String(st.ctimeNs), h.digest, ...(h.md5 ? [h.md5] : [])] as Row;
    this.changed = true;
    return h;
  }

  /** Writes the memo back (atomically; merged with what other processes wrote meanwhile). */
  save(): void {
    if (!this.file || !this.changed) return;
    let rows: Record<string, Row> = {};
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { v: number; rows: Record<string, Row> };
      if (parsed?.v === 1 && parsed.rows) rows = parsed.rows;
    } catch {
      /* start afresh */
    }
    Object.assign(rows, this.rows);
    if (Object.keys(rows).length > MAX_ROWS) rows = Object.fromEntries([...this.used].filter((p) => rows[p]).map((p) => [p, rows[p]]));
    try {
      writeFileAtomic(this.file, JSON.stringify({ v: 1, rows }));
    } catch {
      /* a read-only cache still serves hits */
    }
    this.changed = false;
  }
}
