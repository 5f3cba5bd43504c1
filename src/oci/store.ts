import { ImageError } from './errors.js';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';

/** Read access to the files of an image layout, wherever they are stored (a directory or a tar archive). */
export interface LayoutStore {
  readonly where: string;
  has(name: string): boolean;
  read(name: string): Buffer;
  open(name: string): Readable;
  /** Bytes [start, end) of a file, read from `start` (no skipping through the rest). */
  openRange(name: string, start: number, end: number): Readable;
  size(name: string): number;
}

export class DirStore implements LayoutStore {
  constructor(readonly where: string) {}
  has(name: string): boolean {
    return existsSync(join(this.where, name));
  }
  read(name: string): Buffer {
    return readFileSync(join(this.where, name));
  }
  open(name: string): Readable {
    return createReadStream(join(this.where, name), { highWaterMark: 1 << 20 });
  }
  openRange(name: string, start: number, end: number): Readable {
    return end <= start ? Readable.from([]) : createReadStream(join(this.where, name), { start, end: end - 1, highWaterMark: 1 << 20 });
  }
  size(name: string): number {
    return statSync(join(this.where, name)).size;
  }
}

interface Member {
  offset: number;
  size: number;
}

const MAX_SMALL_READ = 64 << 20;

/** A tar archive read in place: one pass over its headers finds every member, members are then read by offset. */
export class TarStore implements LayoutStore {
  private members = new Map<string, Member>();

  constructor(readonly where: string) {
    this.index();
  }

  private index(): void {
    const fd = openSync(this.where, 'r');
    try {
      const total = statSync(this.where).size;
      const block = Buffer.alloc(512);
      let pos = 0;
      let paxPath: string | null = null;
      let longName: string | null = null;
      while (pos + 512 <= total) {
        if (readSync(fd, block, 0, 512, pos) !== 512) break;
        if (block.every((b) => b === 0)) break;
        const sum = parseOctal(block.subarray(148, 156));
        let calc = 0;
        for (let i = 0; i < 512; i++) calc += i >= 148 && i < 156 ? 0x20 : block[i];
        if (sum !== calc) throw new ImageError(this.where, `not a tar archive (bad header checksum at offset ${pos})`);
        const size = parseSize(block.subarray(124, 136));
        const type = String.fromCharCode(block[156] || 0x30);
        const dataAt = pos + 512;
        const next = dataAt + Math.ceil(size / 512) * 512;
        if (next > total) throw new ImageError(this.where, `truncated tar archive`);
        if (type === 'x' || type === 'L') {
          const data = Buffer.alloc(size);
          readSync(fd, data, 0, size, dataAt);
          if (type === 'x') paxPath = parsePax(data).path ?? null;
          else longName = data.toString('utf8').replace(/\0.*$/s, '');
        } else {
          const prefix = cstr(block.subarray(345, 500));
          let name = paxPath ?? longName ?? (prefix ? `${prefix}/${cstr(block.subarray(0, 100))}` : cstr(block.subarray(0, 100)));
          name = name.replace(/^\.\//, '').replace(/^\/+/, '');
          if (type === '0' || type === '\0' || type === '7') this.members.set(name, { offset: dataAt, size });
          paxPath = null;
          longName = null;
        }
        pos = next;
      }
    } finally {
      closeSync(fd);
    }
  }

  private member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new ImageError(this.where, `archive has no ${name}`);
    return m;
  }

  has(name: string): boolean {
    return this.members.has(name);
  }
  size(name: string): number {
    return this.member(name).size;
  }
  read(name: string): Buffer {
    const m = this.member(name);
    if (m.size > MAX_SMALL_READ) throw new ImageError(this.where, `${name} is too large to read into memory`);
    const fd = openSync(this.where, 'r');
    try {
      const b = Buffer.alloc(m.size);
      readSync(fd, b, 0, m.size, m.offset);
      return b;
    } finally {
      closeSync(fd);
    }
  }
  open(name: string): Readable {
    const m = this.member(name);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.where, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }
  openRange(name: string, start: number, end: number): Readable {
    const m = this.member(name);
    end = Math.min(end, m.size);
    return end <= start ? Readable.from([]) : createReadStream(this.where, { start: m.offset + start, end: m.offset + end - 1, highWaterMark: 1 << 20 });
  }
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}

function parseOctal(b: Buffer): number {
  const s = cstr(b).trim();
  return s ? parseInt(s, 8) : 0;
}

function parseSize(b: Buffer): number {
  if (b[0] & 0x80) {
    // GNU base-256 encoding for large sizes.
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    return n;
  }
  return parseOctal(b);
}

function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(buf.subarray(i, sp).toString('latin1'), 10);
    if (!len || i + len > buf.length) break;
    const rec = buf.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out[rec.subarray(0, eq).toString('utf8')] = rec.subarray(eq + 1).toString('utf8');
    i += len;
  }
  return out;
}
