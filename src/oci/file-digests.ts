import { BigIntStats, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { Digest, isDigest, sha256File } from './digest.js';

/**
 * File content digests memoized by (device, inode, size, mtime, ctime), as git's index does: a file whose stat
 * identity is unchanged is not read again. ctime changes on every write, rename and chmod, and cannot be set by a
 * user, so an unchanged identity means unchanged bytes. Files changed within the last seconds are hashed but not
 * remembered ("racily clean" in git's words: a second write in the same clock tick would not show in the stat).
 */

/** [dev, ino, size, mtimeNs, ctimeNs, digest] */
type Row = [string, string, number, string, string, Digest];

const RACY_NS = 2_000_000_000n;
/** Rows kept at most; when over, only the rows this process used are kept. */
const MAX_ROWS = 200_000;

/** A file's identity and content digest, as used in a layer key. */
export interface FileIdentity {
  digest: Digest;
  /** The stat identity the digest was taken under; compared again after the file was streamed into the layer. */
  stamp: string;
}

export function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export class FileDigests {
  private rows: Record<string, Row> = {};
  private used = new Set<string>();
  private changed = false;

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
    const st = statSync(path, { bigint: true });
    const row = this.rows[path];
    this.used.add(path);
    if (row && row[0] === String(st.dev) && row[1] === String(st.ino) && row[2] === Number(st.size) && row[3] === String(st.mtimeNs) && row[4] === String(st.ctimeNs) && isDigest(row[5])) {
      return { digest: row[5], stamp: stampOf(st) };
    }
    const { digest, size } = await sha256File(path);
    const after = statSync(path, { bigint: true });
    // Changed while being read: usable for nothing (the caller sees the stamp differ later and skips the cache).
    if (stampOf(after) !== stampOf(st) || size !== Number(st.size)) return { digest, stamp: 'changed' };
    const now = BigInt(Date.now()) * 1_000_000n;
    if (now - st.mtimeNs > RACY_NS && now - st.ctimeNs > RACY_NS) {
      this.rows[path] = [String(st.dev), String(st.ino), Number(st.size), String(st.mtimeNs), String(st.ctimeNs), digest];
      this.changed = true;
    }
    return { digest, stamp: stampOf(st) };
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
