import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ElfError } from './errors.js';

/**
 * Random access to the bytes of one file, read on demand so that a large file is never held whole in memory.
 * `at` makes a range readable and says where it is in `bytes` / `view`; that stays valid only until the next call of
 * `at` or `read` on the same source (a file source reuses its buffers: parsing a file allocates no copy of its bytes).
 */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /** The buffer holding the range the last `at` made readable (the same bytes as `view`). */
  readonly bytes: Buffer;
  readonly view: DataView;
  /**
   * The same bytes as 32-bit words in the host's byte order (word i is bytes 4i..4i+3), or null when `bytes` does not
   * start on a 4-byte boundary. Array reads are cheaper than DataView calls in code V8 has not optimised.
   */
  readonly words: Uint32Array | null;
  /** Position in `bytes` of the `length` bytes at `offset`, or an ElfError naming the file when they are not there. */
  at(offset: number, length: number): number;
  /** Exactly `length` bytes at `offset`, valid until the next call on this source. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function truncated(name: string, offset: number, length: number, size: number): ElfError {
  return new ElfError(name, `truncated: needs bytes ${offset}..${offset + length} of ${size}`);
}

export class BufferSource implements ByteSource {
  readonly size: number;
  readonly bytes: Buffer;
  readonly view: DataView;
  readonly words: Uint32Array | null;
  constructor(
    readonly name: string,
    buf: Uint8Array,
  ) {
    this.size = buf.length;
    this.bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.words = wordsOf(buf);
  }
  at(offset: number, length: number): number {
    if (offset < 0 || length < 0 || offset + length > this.size) throw truncated(this.name, offset, length, this.size);
    return offset;
  }
  read(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(this.at(offset, length), offset + length);
  }
  close(): void {}
}

const PAGE = 4096;
/** Pages kept per open file (direct-mapped by page number): headers, the dynamic section, strings, version records. */
const SLOTS = 8;
/**
 * The first pages are read together, at the first access to either: 4 KiB holds the ELF and program headers, 8 KiB
 * also the dynamic strings of a quarter of the programs of /usr/bin and /usr/sbin (3055 -> 2787 reads over them).
 * (16 KiB saved 270 reads more, but copied 8 KiB more of every file: no better in CPU.)
 */
const HEAD_PAGES = 2;
/** A read that is not inside one page goes to a second buffer, kept for reuse up to this size. */
const KEEP_SPAN = 256 << 10;

/** The buffers of a file source, handed from a closed source to the next one opened. */
interface Buffers {
  /** Which page each slot holds (-1: none). */
  slotPage: Int32Array;
  pages: Buffer;
  pagesView: DataView;
  pagesWords: Uint32Array | null;
  span: Buffer;
  spanView: DataView;
  spanWords: Uint32Array | null;
}

function wordsOf(b: Uint8Array): Uint32Array | null {
  return b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2) : null;
}
const free: Buffers[] = [];
/** The one buffer set most recently freed (files are mostly read one at a time: no array push and pop per file). */
let spare: Buffers | null = null;

function newBuffers(): Buffers {
  const pages = Buffer.allocUnsafeSlow(PAGE * SLOTS);
  const span = Buffer.allocUnsafeSlow(PAGE * 4);
  return {
    slotPage: new Int32Array(SLOTS),
    pages,
    pagesView: new DataView(pages.buffer, pages.byteOffset, pages.byteLength),
    pagesWords: wordsOf(pages),
    span,
    spanView: new DataView(span.buffer, span.byteOffset, span.byteLength),
    spanWords: wordsOf(span),
  };
}

export class FileSource implements ByteSource {
  private fd: number;
  readonly size: number;
  bytes: Buffer;
  view: DataView;
  words: Uint32Array | null;
  private bufs: Buffers;
  private readonly slotPage: Int32Array;
  /** Whether the first HEAD_PAGES pages were read (in one read, at the first access to any of them). */
  private headRead = false;
  private constructor(
    readonly name: string,
    fd: number,
    size: number,
  ) {
    this.fd = fd;
    this.size = size;
    this.bufs = spare ?? free.pop() ?? newBuffers();
    spare = null;
    this.slotPage = this.bufs.slotPage.fill(-1);
    this.bytes = this.bufs.pages;
    this.view = this.bufs.pagesView;
    this.words = this.bufs.pagesWords;
  }

  /** Opens a regular file (never a FIFO or device, which could block or never end). */
  static open(hostPath: string, name = hostPath): FileSource {
    const { fd, size } = openRegular(hostPath, name, 'is a directory, not an ELF file');
    return new FileSource(name, fd, size);
  }

  at(offset: number, length: number): number {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw truncated(this.name, offset, length, this.size);
    }
    if (this.fd < 0) throw new ElfError(this.name, 'read after close');
    const page = Math.floor(offset / PAGE);
    const b = this.bufs;
    if (offset + length <= (page + 1) * PAGE) {
      const slot = page % SLOTS;
      const base = slot * PAGE;
      if (this.slotPage[slot] !== page) {
        if (page < HEAD_PAGES && !this.headRead) {
          // The first pages in one read: the headers, and in most programs their names (.dynstr) too.
          this.headRead = true;
          const n = Math.min(HEAD_PAGES * PAGE, this.size);
          for (let i = 0; i < HEAD_PAGES; i++) this.slotPage[i] = -1;
          this.fill(b.pages, 0, n, 0);
          for (let i = 0; i * PAGE < n; i++) this.slotPage[i] = i;
        } else {
          this.slotPage[slot] = -1;
          this.fill(b.pages, base, Math.min(PAGE, this.size - page * PAGE), page * PAGE);
          this.slotPage[slot] = page;
        }
      }
      this.bytes = b.pages;
      this.view = b.pagesView;
      this.words = b.pagesWords;
      return base + offset - page * PAGE;
    }
    if (length > b.span.length) {
      const span = Buffer.allocUnsafeSlow(Math.max(length, b.span.length * 2));
      const spanView = new DataView(span.buffer, span.byteOffset, span.byteLength);
      const spanWords = wordsOf(span);
      if (span.length <= KEEP_SPAN) {
        b.span = span;
        b.spanView = spanView;
        b.spanWords = spanWords;
      }
      this.fill(span, 0, length, offset);
      this.bytes = span;
      this.view = spanView;
      this.words = spanWords;
      return 0;
    }
    this.fill(b.span, 0, length, offset);
    this.bytes = b.span;
    this.view = b.spanView;
    this.words = b.spanWords;
    return 0;
  }

  read(offset: number, length: number): Uint8Array {
    const p = this.at(offset, length);
    return this.bytes.subarray(p, p + length);
  }

  private fill(buf: Buffer, at: number, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, buf, at + done, length - done, position + done);
      } catch (e) {
        // A file replaced by a directory or a FIFO after it was opened (EISDIR, EAGAIN), or an I/O error.
        throw new ElfError(this.name, describeFsError(e));
      }
      if (n === 0) throw new ElfError(this.name, 'file shrank while being read');
      done += n;
    }
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    if (spare === null) spare = this.bufs;
    else free.push(this.bufs);
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
