import { SHT_ARM_ATTRIBUTES } from './constants.js';
import { ElfError } from './errors.js';
import { ByteSource } from './source.js';

/**
 * Tag_CPU_arch from an ARM file's .ARM.attributes section, the only thing read from section headers (they may be
 * missing or lie, so any problem just means "unknown"). Returns undefined when absent.
 */
export function readArmCpuArch(src: ByteSource, is64: boolean, le: boolean, eh: DataView): number | undefined {
  try {
    const shoff = is64 ? Number(eh.getBigUint64(40, le)) : eh.getUint32(32, le);
    const shentsize = eh.getUint16(is64 ? 58 : 46, le);
    const shnum = eh.getUint16(is64 ? 60 : 48, le);
    if (!shoff || !shnum || shnum > 4096 || shentsize !== (is64 ? 64 : 40)) return undefined;
    if (shoff + shnum * shentsize > src.size) return undefined;
    const sh = src.read(shoff, shnum * shentsize);
    const dv = new DataView(sh.buffer, sh.byteOffset, sh.byteLength);
    for (let i = 0; i < shnum; i++) {
      const b = i * shentsize;
      if (dv.getUint32(b + 4, le) !== SHT_ARM_ATTRIBUTES) continue;
      const off = is64 ? Number(dv.getBigUint64(b + 24, le)) : dv.getUint32(b + 16, le);
      const size = is64 ? Number(dv.getBigUint64(b + 32, le)) : dv.getUint32(b + 20, le);
      if (size > 1 << 16 || off + size > src.size) return undefined;
      return parseAttributes(src.read(off, size), le);
    }
  } catch (e) {
    if (!(e instanceof ElfError) && !(e instanceof RangeError)) throw e;
  }
  return undefined;
}

function uleb(b: Uint8Array, pos: { i: number }): number {
  let v = 0;
  let shift = 0;
  while (pos.i < b.length) {
    const c = b[pos.i++];
    v += (c & 0x7f) * 2 ** shift;
    if (!(c & 0x80)) return v;
    shift += 7;
    if (shift > 35) break;
  }
  throw new RangeError('bad ULEB128');
}

/** Format: 'A', then vendor subsections (u32 length, NUL-terminated vendor, then tagged sub-subsections). */
function parseAttributes(b: Uint8Array, le: boolean): number | undefined {
  if (b[0] !== 0x41) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 1;
  while (o + 4 < b.length) {
    const len = dv.getUint32(o, le);
    const end = o + len;
    if (len < 5 || end > b.length) return undefined;
    const nul = b.indexOf(0, o + 4);
    const vendor = new TextDecoder().decode(b.subarray(o + 4, nul));
    let p = nul + 1;
    if (vendor === 'aeabi') {
      while (p + 5 <= end) {
        const tag = b[p];
        const sublen = dv.getUint32(p + 1, le);
        if (sublen < 5 || p + sublen > end) return undefined;
        if (tag === 1) {
          const pos = { i: p + 5 };
          while (pos.i < p + sublen) {
            const t = uleb(b, pos);
            if (t === 6) return uleb(b, pos);
            if (t === 4 || t === 5 || t === 67 || (t > 32 && t % 2 === 1)) {
              const z = b.indexOf(0, pos.i);
              if (z < 0) return undefined;
              pos.i = z + 1;
            } else if (t === 32) {
              uleb(b, pos);
              const z = b.indexOf(0, pos.i);
              if (z < 0) return undefined;
              pos.i = z + 1;
            } else {
              uleb(b, pos);
            }
          }
        }
        p += sublen;
      }
    }
    o = end;
  }
  return undefined;
}
