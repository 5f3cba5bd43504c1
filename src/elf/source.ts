import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ElfError } from './errors.js';

/** Random access to the bytes of one file, read on demand so that a large file is never held whole in memory. */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or an ElfError naming the file when they are not there. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly buf: Uint8Array,
  ) {
    this.size = buf.length;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new ElfError(this.name, `truncated: needs bytes ${offset}..${offset + length} of ${this.size}`);
    }
    return this.buf.subarray(offset, offset + length);
  }
  close(): void {}
}

const PAGE = 4096;
const MAX_PAGES = 64;

export class FileSource implements ByteSource {
  private fd: number;
  readonly size: number;
  /** Small reads (headers, dynamic entries, version records, strings) come from cached 16 KiB pages. */
  private pages = new Map<number, Buffer>();
  private constructor(
    readonly name: string,
    fd: number,
    size: number,
  ) {
    this.fd = fd;
    this.size = size;
  }

  /** Opens a regular file (never a FIFO or device, which could block or never end). */
  static open(hostPath: string, name = hostPath): FileSource {
    const { fd, size } = openRegular(hostPath, name, 'is a directory, not an ELF file');
    return new FileSource(name, fd, size);
  }

  read(offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new ElfError(this.name, `truncated: needs bytes ${offset}..${offset + length} of ${this.size}`);
    }
    const first = Math.floor(offset / PAGE);
    if (length <= PAGE && Math.floor((offset + length - 1) / PAGE) === first) {
      let page = this.pages.get(first);
      if (!page) {
        if (this.pages.size >= MAX_PAGES) this.pages.clear();
        page = this.readRaw(first * PAGE, Math.min(PAGE, this.size - first * PAGE));
        this.pages.set(first, page);
      }
      const at = offset - first * PAGE;
      return page.subarray(at, at + length);
    }
    return this.readRaw(offset, length);
  }

  private readRaw(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw new ElfError(this.name, 'file shrank while being read');
      done += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a path component is not a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return (e as Error)?.message ?? String(e);
  }
}

/**
 * Opens a regular file for reading: without blocking (a FIFO must not wait for a writer), then refused unless fstat
 * says it is a regular file (a FIFO or device could block or never end). The caller closes the descriptor.
 */
export function openRegular(hostPath: string, name: string, isDirectory = 'is a directory, not a file'): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(hostPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ElfError(name, describeFsError(e));
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new ElfError(name, st.isDirectory() ? isDirectory : 'is not a regular file');
  }
  return { fd, size: st.size };
}
