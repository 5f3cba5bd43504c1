import { closeSync, readSync } from 'node:fs';
import { ElfError } from './errors.js';
import { openRegular } from './source.js';

/**
 * Files ocislim reads for itself out of a root (ld.so.conf and its includes, musl's path file, the loader): a hostile
 * or broken root must not hang it (a FIFO), feed it forever (/dev/zero) or make it read gigabytes (a sparse file).
 * So: opened without blocking, regular files only, and a size cap, or a bounded scan that never holds the whole file.
 */

function readAt(fd: number, buf: Buffer, length: number, pos: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function humanBytes(n: number): string {
  return n >= 1 << 20 ? `${n / (1 << 20)} MiB` : `${n / 1024} KiB`;
}

/** A small text file of the root, whole, or an ElfError naming it when it is not a regular file or exceeds `maxBytes`. */
export function readRootText(hostPath: string, name: string, maxBytes: number): string {
  const { fd, size } = openRegular(hostPath, name);
  try {
    if (size > maxBytes) throw new ElfError(name, `is ${size} bytes, more than the ${humanBytes(maxBytes)} such a file may hold`);
    const buf = Buffer.alloc(size);
    const n = readAt(fd, buf, size, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Scans at most `maxBytes` of a file in windows of `window` bytes, each overlapping the previous by `overlap` bytes
 * (so a pattern shorter than that is never cut in two); `visit` returns true to stop. Memory stays at one window.
 */
export function scanRootFile(hostPath: string, name: string, maxBytes: number, visit: (bytes: Buffer) => boolean, window = 1 << 20, overlap = 4096): void {
  const { fd, size } = openRegular(hostPath, name);
  try {
    const end = Math.min(size, maxBytes);
    const buf = Buffer.allocUnsafe(window + overlap);
    let kept = 0;
    for (let pos = 0; pos < end; ) {
      const n = readAt(fd, buf.subarray(kept), Math.min(window, end - pos), pos);
      if (n === 0) break;
      pos += n;
      const view = buf.subarray(0, kept + n);
      if (visit(view)) return;
      kept = Math.min(overlap, view.length);
      view.copy(buf, 0, view.length - kept);
    }
  } finally {
    closeSync(fd);
  }
}
