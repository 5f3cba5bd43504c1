/**
 * A deterministic tar writer: POSIX ustar headers with PAX extended headers only where ustar cannot hold a field
 * (long or non-ASCII names, large sizes, xattrs). Fixed field values (no user or group names, device numbers 0) so
 * the same entries always give the same bytes.
 */

import { Entry } from './entry.js';

export type { EntryType } from './entry.js';

/** A tar member: an entry (its path is the member name, without a leading "/") with its size and time. */
export interface TarHeader extends Entry {
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
}

const enc = new TextEncoder();
const TYPEFLAG: Record<Entry['type'], string> = { file: '0', hardlink: '1', symlink: '2', 'char-device': '3', 'block-device': '4', dir: '5', fifo: '6' };
const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

function writeStr(buf: Buffer, s: string, off: number, len: number): void {
  buf.write(s, off, len, 'latin1');
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** Splits a path into ustar prefix (<=155) and name (<=100) at a "/", or returns null. */
function splitUstar(path: string): { prefix: string; name: string } | null {
  if (path.length <= 100) return { prefix: '', name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
    if (path.length - i - 1 > 100) break;
  }
  return null;
}

function paxRecord(key: string, value: Uint8Array): Buffer {
  const body = Buffer.concat([enc.encode(` ${key}=`), value, enc.encode('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([enc.encode(String(len)), body]);
}

function ustarHeader(h: { name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: string }): Buffer {
  const b = Buffer.alloc(512);
  writeStr(b, h.name, 0, 100);
  writeStr(b, octal(h.mode & 0o7777, 8), 100, 8);
  writeStr(b, octal(h.uid, 8), 108, 8);
  writeStr(b, octal(h.gid, 8), 116, 8);
  writeStr(b, octal(h.size, 12), 124, 12);
  writeStr(b, octal(h.mtime, 12), 136, 12);
  b.fill(0x20, 148, 156);
  writeStr(b, h.typeflag, 156, 1);
  writeStr(b, h.linkname, 157, 100);
  writeStr(b, 'ustar\0', 257, 6);
  writeStr(b, '00', 263, 2);
  writeStr(b, octal(0, 8), 329, 8);
  writeStr(b, octal(0, 8), 337, 8);
  writeStr(b, h.prefix, 345, 155);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  writeStr(b, sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}

/** The header block(s) for one entry: a PAX 'x' header first when needed. */
export function encodeHeader(h: TarHeader): Buffer {
  const member = h.path.replace(/^\/+/, '');
  const name = h.type === 'dir' ? member.replace(/\/*$/, '/') : member;
  const linkname = h.linkname ?? '';
  const size = h.type === 'file' ? h.size : 0;
  const pax: Buffer[] = [];
  let split = isAscii(name) ? splitUstar(name) : null;
  if (!split) {
    pax.push(paxRecord('path', enc.encode(name)));
    split = { prefix: '', name: asciiPrefix(name, 100) };
  }
  let link = linkname;
  if (!isAscii(linkname) || linkname.length > 100) {
    pax.push(paxRecord('linkpath', enc.encode(linkname)));
    link = asciiPrefix(linkname, 100);
  }
  let sizeField = size;
  if (size > MAX_OCTAL_12) {
    pax.push(paxRecord('size', enc.encode(String(size))));
    sizeField = 0;
  }
  let uid = h.uid;
  let gid = h.gid;
  if (uid > MAX_OCTAL_8) {
    pax.push(paxRecord('uid', enc.encode(String(uid))));
    uid = 0;
  }
  if (gid > MAX_OCTAL_8) {
    pax.push(paxRecord('gid', enc.encode(String(gid))));
    gid = 0;
  }
  for (const k of Object.keys(h.xattrs ?? {}).sort()) pax.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs![k]));
  const main = ustarHeader({ name: split.name, prefix: split.prefix, mode: h.mode, uid, gid, size: sizeField, mtime: h.mtime, typeflag: TYPEFLAG[h.type], linkname: link });
  if (!pax.length) return main;
  const body = Buffer.concat(pax);
  const paxHead = ustarHeader({ name: 'PaxHeader', prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: h.mtime, typeflag: 'x', linkname: '' });
  return Buffer.concat([paxHead, body, padding(body.length), main]);
}

function asciiPrefix(s: string, n: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, n);
}

export function padding(size: number): Buffer {
  const r = size % 512;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - r);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);
