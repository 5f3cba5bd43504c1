import {
  DF_1_PIE,
  DT_AUXILIARY,
  DT_FILTER,
  DT_FLAGS,
  DT_FLAGS_1,
  DT_GNU_HASH,
  DT_HASH,
  DT_NEEDED,
  DT_NULL,
  DT_RPATH,
  DT_RUNPATH,
  DT_SONAME,
  DT_STRSZ,
  DT_STRTAB,
  DT_SYMENT,
  DT_SYMTAB,
  DT_VERDEF,
  DT_VERDEFNUM,
  DT_VERNEED,
  DT_VERNEEDNUM,
  EM_ARM,
  ET_DYN,
  ET_EXEC,
  LIMITS,
  PT_DYNAMIC,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
} from './constants.js';
import { ElfError } from './errors.js';
import { ElfIdentity, platformOf } from './platform.js';
import type { Platform } from '../oci/platform.js';
import { ByteSource, FileSource } from './source.js';
import { readArmCpuArch } from './sections.js';

/** How the loader (and ldd) sees a file. */
export type ElfKind = 'dynamic-executable' | 'shared-object' | 'static' | 'static-pie' | 'interpreter-only' | 'other';

export interface VersionNeed {
  /** The library named in the Verneed entry (libc.so.6). */
  file: string;
  /** Versions required from it (GLIBC_2.34, ...). */
  versions: string[];
}

export interface AbiTag {
  os: string;
  /** Minimum kernel version, "3.2.0". */
  version: string;
}

export interface ElfFile extends ElfIdentity {
  name: string;
  size: number;
  osabi: number;
  type: number;
  interp: string | null;
  hasDynamic: boolean;
  needed: string[];
  /** DT_AUXILIARY and DT_FILTER names: the loader maps these too. */
  filters: string[];
  soname: string | null;
  rpath: string | null;
  runpath: string | null;
  dtFlags: number;
  flags1: number;
  /** Versions required from other objects (DT_VERNEED); empty when read with `versions: false`. */
  versionNeeds: VersionNeed[];
  /** Versions this object defines (DT_VERDEF), without the base entry; empty when read with `versions: false`. */
  versionDefs: string[];
  /** Undefined dynamic symbols (imports); present only when read with `symbols: true`. */
  imports?: string[];
  abiTag: AbiTag | null;
  isGo: boolean;
  kind: ElfKind;
  platform: Platform | null;
  /** Why `platform` is null. */
  platformError?: string;
}

export interface ReadOptions {
  /** Also read the imported symbol names (costs a pass over the dynamic symbol table). */
  symbols?: boolean;
  /**
   * Read the version records (DT_VERNEED, DT_VERDEF; default true). Without them a file costs fewer reads and
   * strings (ldd's text output shows none: a seventh of its CPU over /usr/bin), and a damaged version record is not
   * looked at, so it cannot make the file unreadable.
   */
  versions?: boolean;
}

/** Made on first use: a TextDecoder costs 2-3 ms to make in a fresh process, and nearly every name is ASCII. */
let utf8: TextDecoder | undefined;
/** A 64-bit field whose high word reaches 2^21 is past Number.MAX_SAFE_INTEGER. */
const HI_LIMIT = 0x200000;
const TWO32 = 4294967296;
const u8IndexOf = Uint8Array.prototype.indexOf;
/** Whether this machine stores a 32-bit word's low byte first (x86, arm64, riscv: yes). */
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A 64-bit field from its two 32-bit halves, as Parser.word gives it: -1 when it does not fit in a number. */
function word64(lo: number, hi: number): number {
  if (hi === 0) return lo;
  return hi >= HI_LIMIT ? -1 : hi * TWO32 + lo;
}

/** Strings are first looked for inside the 4 KiB page they start in (one cached read of a file source). */
const STR_PAGE = 4096;

/** Text of bytes [start, end) of `b`: ASCII (nearly every name) directly, anything else as UTF-8. */
function decode(b: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) if (b[i] > 0x7f) return (utf8 ??= new TextDecoder('utf-8')).decode(b.subarray(start, end));
  return (b as LatinSlice).latin1Slice(start, end);
}
/** Buffer's own decoder behind toString('latin1'), without toString's argument checks. */
type LatinSlice = Buffer & { latin1Slice(start: number, end: number): string };

/** Reads an ELF file at a host path. */
export function readElfFile(hostPath: string, opts: ReadOptions = {}, name = hostPath): ElfFile {
  const src = FileSource.open(hostPath, name);
  try {
    return readElf(src, opts);
  } finally {
    src.close();
  }
}

/**
 * Parses what the loader uses: the ELF header, program headers, PT_INTERP, and PT_DYNAMIC reached through PT_LOAD
 * address translation. Section headers are never trusted (only ARM's attributes are read from them, as a hint).
 * Throws only ElfError.
 */
export function readElf(src: ByteSource, opts: ReadOptions = {}): ElfFile {
  try {
    return new Parser(src).parse(opts);
  } catch (e) {
    if (e instanceof ElfError) throw e;
    throw new ElfError(src.name, `internal error while parsing: ${(e as Error)?.message ?? e}`);
  }
}

/**
 * One parse. Every read goes through src.at(), whose window is valid only until the next read: fields are taken out
 * of it into locals before anything else is read. Program headers are kept as numbers, not objects.
 */
class Parser {
  private le = true;
  private is64 = true;
  /** PT_LOAD segments: vaddr, offset, filesz, three numbers each. */
  private loads: number[] = [];
  private strOff = 0;
  private strSize = 0;
  private strDeclared = 0;

  constructor(private readonly src: ByteSource) {}

  private fail(reason: string): never {
    throw new ElfError(this.src.name, reason);
  }

  /** An address-sized field at `p` of the current window, as a number; -1 when it does not fit in one. */
  private word(p: number): number {
    const dv = this.src.view;
    if (!this.is64) return dv.getUint32(p, this.le);
    const hi = dv.getUint32(this.le ? p + 4 : p, this.le);
    const lo = dv.getUint32(this.le ? p : p + 4, this.le);
    // (nearly every value fits in 32 bits: returned as is, it is no new heap number in unoptimized code)
    if (hi === 0) return lo;
    return hi >= HI_LIMIT ? -1 : hi * TWO32 + lo;
  }

  parse(opts: ReadOptions): ElfFile {
    const src = this.src;
    if (src.size < 16) this.fail(src.size === 0 ? 'empty file, not an ELF file' : 'too short to be an ELF file');
    let p = src.at(0, 16);
    let b = src.bytes;
    if (b[p] !== 0x7f || b[p + 1] !== 0x45 || b[p + 2] !== 0x4c || b[p + 3] !== 0x46) this.fail('not an ELF file (bad magic)');
    const cls = b[p + 4];
    const data = b[p + 5];
    if (cls !== 1 && cls !== 2) this.fail(`invalid ELF class ${cls}`);
    if (data !== 1 && data !== 2) this.fail(`invalid ELF data encoding ${data}`);
    if (b[p + 6] !== 1) this.fail(`unsupported ELF version ${b[p + 6]}`);
    const osabi = b[p + 7];
    const is64 = (this.is64 = cls === 2);
    const le = (this.le = data === 1);
    const ehsize = is64 ? 64 : 52;
    if (src.size < ehsize) this.fail('truncated ELF header');
    p = src.at(0, ehsize);
    const dv = src.view;
    const type = dv.getUint16(p + 16, le);
    const machine = dv.getUint16(p + 18, le);
    const phoff = is64 ? this.word(p + 32) : dv.getUint32(p + 28, le);
    const flags = dv.getUint32(p + (is64 ? 48 : 36), le);
    const phentsize = dv.getUint16(p + (is64 ? 54 : 42), le);
    const phnum = dv.getUint16(p + (is64 ? 56 : 44), le);

    // Program headers: the PT_LOADs for address translation, the first PT_INTERP and PT_DYNAMIC, every PT_NOTE.
    let interpOff = -1;
    let interpSize = 0;
    let dynOff = -1;
    let dynSize = 0;
    let hasInterp = false;
    let hasDyn = false;
    const notes: number[] = [];
    if (phnum !== 0) {
      if (phnum === 0xffff) this.fail('PN_XNUM program header count is not supported');
      if (phnum > LIMITS.phnum) this.fail(`too many program headers (${phnum})`);
      const want = is64 ? 56 : 32;
      if (phentsize !== want) this.fail(`invalid program header size ${phentsize} (expected ${want})`);
      if (phoff < 0 || phoff + phnum * phentsize > src.size) this.fail('program headers lie outside the file (truncated?)');
      const q = src.at(phoff, phnum * phentsize);
      const v = src.view;
      // Little-endian words on a little-endian host, aligned: read as array elements (see ByteSource.words).
      const u = le && HOST_LE && (q & 3) === 0 ? src.words : null;
      for (let i = 0; i < phnum; i++) {
        const e = q + i * phentsize;
        const t = u !== null ? u[e >> 2] : v.getUint32(e, le);
        if (t !== PT_LOAD && t !== PT_INTERP && t !== PT_DYNAMIC && t !== PT_NOTE) continue;
        let offset: number;
        let vaddr: number;
        let filesz: number;
        if (u !== null) {
          const w = e >> 2;
          offset = is64 ? word64(u[w + 2], u[w + 3]) : u[w + 1];
          vaddr = is64 ? word64(u[w + 4], u[w + 5]) : u[w + 2];
          filesz = is64 ? word64(u[w + 8], u[w + 9]) : u[w + 4];
        } else {
          offset = is64 ? this.word(e + 8) : v.getUint32(e + 4, le);
          vaddr = is64 ? this.word(e + 16) : v.getUint32(e + 8, le);
          filesz = is64 ? this.word(e + 32) : v.getUint32(e + 16, le);
        }
        if (t === PT_LOAD) this.loads.push(vaddr, offset, filesz);
        else if (t === PT_INTERP) {
          if (!hasInterp) (hasInterp = true), (interpOff = offset), (interpSize = filesz);
        } else if (t === PT_DYNAMIC) {
          if (!hasDyn) (hasDyn = true), (dynOff = offset), (dynSize = filesz);
        } else notes.push(offset, filesz, is64 ? this.word(e + 48) : v.getUint32(e + 28, le));
      }
    }
    const interp = hasInterp ? this.readInterp(interpOff, interpSize) : null;

    const file: ElfFile = {
      elfClass: is64 ? 64 : 32,
      littleEndian: le,
      machine,
      flags,
      name: src.name,
      size: src.size,
      osabi,
      type,
      interp,
      hasDynamic: hasDyn,
      needed: [],
      filters: [],
      soname: null,
      rpath: null,
      runpath: null,
      dtFlags: 0,
      flags1: 0,
      versionNeeds: [],
      versionDefs: [],
      abiTag: null,
      isGo: false,
      kind: 'other',
      platform: null,
    };
    if (hasDyn) this.readDynamic(dynOff, dynSize, file, opts);
    for (let i = 0; i < notes.length; i += 3) this.readNotes(notes[i], notes[i + 1], notes[i + 2], file);

    let armArch: number | undefined;
    if (machine === EM_ARM) {
      const eh = Uint8Array.from(src.read(0, ehsize));
      armArch = readArmCpuArch(src, is64, le, new DataView(eh.buffer));
    }
    const platform = platformOf(file, armArch);
    if (typeof platform === 'string') file.platformError = platform;
    else file.platform = platform;
    file.kind = classify(file);
    return file;
  }

  private readInterp(offset: number, filesz: number): string {
    if (filesz < 2 || filesz > 4096) this.fail(`PT_INTERP has invalid size ${filesz}`);
    if (offset < 0 || offset + filesz > this.src.size) this.fail('PT_INTERP lies outside the file (truncated?)');
    const p = this.src.at(offset, filesz);
    const b = this.src.bytes;
    if (b[p + filesz - 1] !== 0) this.fail('PT_INTERP is not NUL-terminated');
    let nul = p;
    while (b[nul] !== 0) nul++;
    if (nul === p) this.fail('PT_INTERP is empty');
    return decode(b, p, nul);
  }

  /**
   * The first well-formed PT_LOAD segment (its index in `loads`) whose file bytes hold `len` bytes at `va` (`inside`:
   * hold the byte at `va`); -1 when none.
   */
  private segmentAt(va: number, len: number, inside = false): number {
    const l = this.loads;
    for (let i = 0; i < l.length; i += 3) {
      const vaddr = l[i];
      if (vaddr < 0 || l[i + 1] < 0 || l[i + 2] < 0) continue;
      const end = vaddr + l[i + 2];
      if (va >= vaddr && (inside ? va < end : va + len <= end)) return i;
    }
    return -1;
  }

  /** File offset of `len` bytes at virtual address `va`, through the PT_LOAD segment that holds them. */
  private vaToOff(va: number, len: number): number | null {
    const i = va < 0 ? -1 : this.segmentAt(va, len);
    if (i < 0) return null;
    const off = va - this.loads[i] + this.loads[i + 1];
    return off + len <= this.src.size ? off : null;
  }

  /** How many bytes are mapped from the file from `va` to the end of its segment (0 when unmapped). */
  private mappedFrom(va: number): number {
    const i = this.segmentAt(va, 0, true);
    if (i < 0) return 0;
    const vaddr = this.loads[i];
    return Math.max(0, Math.min(vaddr + this.loads[i + 2] - va, this.src.size - (va - vaddr + this.loads[i + 1])));
  }

  /** Makes `len` bytes at virtual address `va` readable; returns their position in the source's window. */
  private readAt(va: number, len: number, what: string): number {
    const off = this.vaToOff(va, len);
    if (off === null) this.fail(`${what} at 0x${va.toString(16)} is not inside any PT_LOAD segment`);
    return this.src.at(off, len);
  }

  private readDynamic(offset: number, filesz: number, file: ElfFile, opts: ReadOptions): void {
    const is64 = this.is64;
    const le = this.le;
    const ent = is64 ? 16 : 8;
    if (offset < 0 || filesz < 0 || offset + filesz > this.src.size) this.fail('PT_DYNAMIC lies outside the file (truncated?)');
    const count = Math.min(Math.floor(filesz / ent), LIMITS.dynEntries);
    const q = this.src.at(offset, count * ent);
    const dv = this.src.view;
    // Little-endian words on a little-endian host, aligned: read as array elements (see ByteSource.words).
    const u = le && HOST_LE && (q & 3) === 0 ? this.src.words : null;
    const needed: number[] = [];
    const filters: number[] = [];
    let soname = -1;
    let rpath = -1;
    let runpath = -1;
    // The other tags used, first occurrence of each.
    let strtab: number | undefined;
    let strsz: number | undefined;
    let dtFlags: number | undefined;
    let flags1: number | undefined;
    let verneed: number | undefined;
    let verneedNum: number | undefined;
    let verdef: number | undefined;
    let verdefNum: number | undefined;
    let hash: number | undefined;
    let gnuHash: number | undefined;
    let symtab: number | undefined;
    let syment: number | undefined;
    for (let i = 0; i < count; i++) {
      const b = q + i * ent;
      let tag: number;
      let val: number;
      if (u !== null) {
        const w = b >> 2;
        tag = is64 ? (u[w + 1] === 0 ? u[w] : -1) : u[w] | 0;
        if (tag === DT_NULL) break;
        val = is64 ? word64(u[w + 2], u[w + 3]) : u[w + 1];
      } else {
        // A 64-bit tag with a non-zero high word is none of the tags used here (nor DT_NULL).
        tag = is64 ? (dv.getUint32(le ? b + 4 : b, le) === 0 ? dv.getUint32(le ? b : b + 4, le) : -1) : dv.getInt32(b, le);
        if (tag === DT_NULL) break;
        val = this.word(b + (is64 ? 8 : 4));
      }
      switch (tag) {
        case DT_NEEDED:
          if (needed.length >= LIMITS.needed) this.fail(`more than ${LIMITS.needed} DT_NEEDED entries`);
          needed.push(val);
          break;
        case DT_AUXILIARY:
        case DT_FILTER:
          filters.push(val);
          break;
        case DT_SONAME:
          soname = val;
          break;
        case DT_RPATH:
          rpath = val;
          break;
        case DT_RUNPATH:
          runpath = val;
          break;
        case DT_STRTAB:
          strtab ??= val;
          break;
        case DT_STRSZ:
          strsz ??= val;
          break;
        case DT_FLAGS:
          dtFlags ??= val;
          break;
        case DT_FLAGS_1:
          flags1 ??= val;
          break;
        case DT_VERNEED:
          verneed ??= val;
          break;
        case DT_VERNEEDNUM:
          verneedNum ??= val;
          break;
        case DT_VERDEF:
          verdef ??= val;
          break;
        case DT_VERDEFNUM:
          verdefNum ??= val;
          break;
        case DT_HASH:
          hash ??= val;
          break;
        case DT_GNU_HASH:
          gnuHash ??= val;
          break;
        case DT_SYMTAB:
          symtab ??= val;
          break;
        case DT_SYMENT:
          syment ??= val;
          break;
      }
    }
    file.dtFlags = (dtFlags ?? 0) >>> 0;
    file.flags1 = (flags1 ?? 0) >>> 0;
    const versions = opts.versions !== false;
    const hasStrings = needed.length || filters.length || soname >= 0 || rpath >= 0 || runpath >= 0 || (versions && (verneed !== undefined || verdef !== undefined)) || opts.symbols;
    if (!hasStrings) return;
    if (!this.strtab(strtab, strsz)) {
      if (needed.length || soname >= 0 || rpath >= 0 || runpath >= 0) this.fail('PT_DYNAMIC names libraries but has no usable DT_STRTAB');
      return;
    }
    const names: string[] = [];
    for (let i = 0; i < needed.length; i++) names.push(this.str(needed[i], 'DT_NEEDED'));
    file.needed = names;
    if (filters.length) file.filters = filters.map((o) => this.str(o, 'DT_FILTER'));
    if (soname >= 0) file.soname = this.str(soname, 'DT_SONAME');
    if (rpath >= 0) file.rpath = this.str(rpath, 'DT_RPATH', LIMITS.pathListLength);
    if (runpath >= 0) file.runpath = this.str(runpath, 'DT_RUNPATH', LIMITS.pathListLength);
    if (versions && verneed !== undefined) file.versionNeeds = this.readVerneed(verneed, verneedNum ?? 0);
    if (versions && verdef !== undefined) file.versionDefs = this.readVerdef(verdef, verdefNum ?? 0);
    if (opts.symbols) file.imports = this.readImports(symtab, syment, hash, gnuHash);
  }

  /** Locates the dynamic string table; false when there is none. */
  private strtab(va: number | undefined, strsz: number | undefined): boolean {
    if (va === undefined) return false;
    const avail = this.mappedFrom(va);
    if (avail === 0) this.fail(`DT_STRTAB at 0x${va.toString(16)} is not inside any PT_LOAD segment`);
    const size = Math.min(strsz !== undefined && strsz >= 0 ? strsz : avail, avail, LIMITS.strtabBytes);
    this.strOff = this.vaToOff(va, size)!;
    this.strSize = size;
    this.strDeclared = strsz ?? size;
    return true;
  }

  /** The NUL-terminated string at `off` in the dynamic string table, at most `max` bytes long. */
  private str(off: number, what: string, max: number = LIMITS.stringLength): string {
    if (off < 0 || off >= this.strDeclared || off >= this.strSize) this.fail(`${what} string offset ${off} is outside the string table`);
    const src = this.src;
    const start = this.strOff + off;
    const end = this.strOff + this.strSize;
    // Most names end inside the page they start in: one cached read.
    let len = Math.min((Math.floor(start / STR_PAGE) + 1) * STR_PAGE, end) - start;
    for (;;) {
      const p = src.at(start, len);
      const b = src.bytes;
      const lim = p + Math.min(len, max + 1);
      // (the typed array's own indexOf: Buffer's wrapper checks its arguments first)
      const i = u8IndexOf.call(b, 0, p);
      if (i >= 0 && i < lim) return decode(b, p, i);
      if (len > max || start + len >= end) break;
      len = Math.min(end - start, max + 1);
    }
    this.fail(`${what} string at ${off} is unterminated or too long`);
  }

  private readVerneed(va: number, num: number): VersionNeed[] {
    const out: VersionNeed[] = [];
    const le = this.le;
    let budget = LIMITS.versionEntries;
    let cur = va;
    for (let i = 0; i < num; i++) {
      let p = this.readAt(cur, 16, 'a version-needed entry');
      let dv = this.src.view;
      const cnt = dv.getUint16(p + 2, le);
      const fileOff = dv.getUint32(p + 4, le);
      const auxOff = dv.getUint32(p + 8, le);
      const nextNeed = dv.getUint32(p + 12, le);
      const fileName = this.str(fileOff, 'Verneed vn_file');
      const versions: string[] = [];
      let aux = cur + auxOff;
      for (let j = 0; j < cnt; j++) {
        if (--budget < 0) this.fail('too many version entries');
        p = this.readAt(aux, 16, 'a version-needed aux entry');
        dv = this.src.view;
        const nameOff = dv.getUint32(p + 8, le);
        const next = dv.getUint32(p + 12, le);
        versions.push(this.str(nameOff, 'Vernaux vna_name'));
        if (next === 0) break;
        aux += next;
      }
      out.push({ file: fileName, versions });
      if (nextNeed === 0 || --budget < 0) break;
      cur += nextNeed;
    }
    return out;
  }

  private readVerdef(va: number, num: number): string[] {
    const out: string[] = [];
    const le = this.le;
    let cur = va;
    for (let i = 0; i < Math.min(num, LIMITS.versionEntries); i++) {
      let p = this.readAt(cur, 20, 'a version-definition entry');
      let dv = this.src.view;
      const flags = dv.getUint16(p + 2, le);
      const cnt = dv.getUint16(p + 6, le);
      const auxOff = dv.getUint32(p + 12, le);
      const next = dv.getUint32(p + 16, le);
      if (cnt > 0 && !(flags & 1)) {
        p = this.readAt(cur + auxOff, 8, 'a version-definition aux entry');
        dv = this.src.view;
        out.push(this.str(dv.getUint32(p, le), 'Verdaux vda_name'));
      }
      if (next === 0) break;
      cur += next;
    }
    return out;
  }

  private symbolCount(hash: number | undefined, gnu: number | undefined): number {
    const le = this.le;
    if (hash !== undefined) {
      const p = this.readAt(hash, 8, 'DT_HASH');
      return this.src.view.getUint32(p + 4, le);
    }
    if (gnu === undefined) return 0;
    let p = this.readAt(gnu, 16, 'DT_GNU_HASH');
    let dv = this.src.view;
    const nbuckets = dv.getUint32(p, le);
    const symoffset = dv.getUint32(p + 4, le);
    const bloomSize = dv.getUint32(p + 8, le);
    if (nbuckets > LIMITS.symbols || bloomSize > LIMITS.symbols) this.fail('DT_GNU_HASH header is implausible');
    const bucketsVa = gnu + 16 + bloomSize * (this.is64 ? 8 : 4);
    p = this.readAt(bucketsVa, nbuckets * 4, 'DT_GNU_HASH buckets');
    dv = this.src.view;
    let max = 0;
    for (let i = 0; i < nbuckets; i++) max = Math.max(max, dv.getUint32(p + i * 4, le));
    if (max < symoffset) return symoffset;
    const chainVa = bucketsVa + nbuckets * 4;
    for (let i = max; i < LIMITS.symbols; i++) {
      const c = this.readAt(chainVa + (i - symoffset) * 4, 4, 'DT_GNU_HASH chain');
      if (this.src.view.getUint32(c, le) & 1) return i + 1;
    }
    this.fail('DT_GNU_HASH chain does not end');
  }

  private readImports(symtab: number | undefined, symentTag: number | undefined, hash: number | undefined, gnu: number | undefined): string[] {
    if (symtab === undefined) return [];
    const syment = symentTag ?? (this.is64 ? 24 : 16);
    if (syment !== (this.is64 ? 24 : 16)) this.fail(`invalid DT_SYMENT ${syment}`);
    const count = Math.min(this.symbolCount(hash, gnu), LIMITS.symbols);
    if (count === 0) return [];
    const le = this.le;
    const p = this.readAt(symtab, count * syment, 'the dynamic symbol table');
    const dv = this.src.view;
    // Name offsets first: reading a name moves the source's window.
    const offs: number[] = [];
    for (let i = 1; i < count; i++) {
      const b = p + i * syment;
      const nameOff = dv.getUint32(b, le);
      const info = dv.getUint8(b + (this.is64 ? 4 : 12));
      const shndx = dv.getUint16(b + (this.is64 ? 6 : 14), le);
      const bind = info >> 4;
      if (shndx !== 0 || nameOff === 0 || (bind !== 1 && bind !== 2)) continue;
      offs.push(nameOff);
    }
    return offs.map((o) => this.str(o, 'symbol name'));
  }

  private readNotes(offset: number, filesz: number, palign: number, file: ElfFile): void {
    if (offset < 0 || filesz <= 0 || offset + filesz > this.src.size) return;
    const le = this.le;
    const len = Math.min(filesz, LIMITS.notesBytes);
    const q = this.src.at(offset, len);
    const dv = this.src.view;
    const b = this.src.bytes;
    // (n + align - 1) & ~(align - 1) below, written out: a closure per call is garbage to collect.
    const mask = palign === 8 ? 7 : 3;
    const align = mask + 1;
    let o = 0;
    while (o + 12 <= len) {
      const namesz = dv.getUint32(q + o, le);
      const descsz = dv.getUint32(q + o + 4, le);
      const ntype = dv.getUint32(q + o + 8, le);
      const nameOff = o + 12;
      const descOff = nameOff + ((namesz + mask) & ~mask);
      const end = descOff + ((descsz + mask) & ~mask);
      if (namesz > len || descsz > len || end > len + align) break;
      // The name without its NUL: "GNU" (the ABI tag) and "Go" (Go's build ID) are the ones used.
      const nameLen = Math.max(0, Math.min(namesz, len - nameOff) - 1);
      const n = q + nameOff;
      if (nameLen === 3 && b[n] === 0x47 && b[n + 1] === 0x4e && b[n + 2] === 0x55) {
        if (ntype === 1 && descsz >= 16 && descOff + 16 <= len) {
          const d = q + descOff;
          const os = dv.getUint32(d, le);
          const v = `${dv.getUint32(d + 4, le)}.${dv.getUint32(d + 8, le)}.${dv.getUint32(d + 12, le)}`;
          file.abiTag = { os: ['Linux', 'GNU', 'Solaris2', 'FreeBSD'][os] ?? `os ${os}`, version: v };
        }
      } else if (nameLen === 2 && b[n] === 0x47 && b[n + 1] === 0x6f && ntype === 4) {
        file.isGo = true;
      }
      o = end;
    }
  }
}

function classify(f: ElfFile): ElfKind {
  if (f.type !== ET_EXEC && f.type !== ET_DYN) return 'other';
  const pie = (f.flags1 & DF_1_PIE) !== 0;
  if (!f.interp) {
    if (!f.hasDynamic) return 'static';
    if (f.type === ET_DYN && pie) return 'static-pie';
    return f.type === ET_DYN ? 'shared-object' : 'static';
  }
  if (f.type === ET_DYN && f.soname && !pie) return 'shared-object';
  if (f.needed.length === 0) return 'interpreter-only';
  return 'dynamic-executable';
}
