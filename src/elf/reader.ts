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
  versionNeeds: VersionNeed[];
  /** Versions this object defines (DT_VERDEF), without the base entry. */
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
}

interface Phdr {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
  align: number;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder('utf-8');

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

class Parser {
  private le = true;
  private is64 = true;
  private loads: Phdr[] = [];

  constructor(private readonly src: ByteSource) {}

  private fail(reason: string): never {
    throw new ElfError(this.src.name, reason);
  }

  private dv(buf: Uint8Array): DataView {
    return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** An address-sized field, checked to fit in a JS number; -1 when it does not (treated as invalid by callers). */
  private word(dv: DataView, off: number): number {
    if (!this.is64) return dv.getUint32(off, this.le);
    const v = dv.getBigUint64(off, this.le);
    return v > MAX_SAFE ? -1 : Number(v);
  }

  parse(opts: ReadOptions): ElfFile {
    const src = this.src;
    if (src.size < 16) this.fail(src.size === 0 ? 'empty file, not an ELF file' : 'too short to be an ELF file');
    const ident = src.read(0, 16);
    if (ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) this.fail('not an ELF file (bad magic)');
    if (ident[4] !== 1 && ident[4] !== 2) this.fail(`invalid ELF class ${ident[4]}`);
    if (ident[5] !== 1 && ident[5] !== 2) this.fail(`invalid ELF data encoding ${ident[5]}`);
    if (ident[6] !== 1) this.fail(`unsupported ELF version ${ident[6]}`);
    this.is64 = ident[4] === 2;
    this.le = ident[5] === 1;
    const ehsize = this.is64 ? 64 : 52;
    if (src.size < ehsize) this.fail('truncated ELF header');
    const eh = this.dv(src.read(0, ehsize));
    const type = eh.getUint16(16, this.le);
    const machine = eh.getUint16(18, this.le);
    const phoff = this.word(eh, this.is64 ? 32 : 28);
    const flags = eh.getUint32(this.is64 ? 48 : 36, this.le);
    const phentsize = eh.getUint16(this.is64 ? 54 : 42, this.le);
    const phnum = eh.getUint16(this.is64 ? 56 : 44, this.le);
    const identity: ElfIdentity = { elfClass: this.is64 ? 64 : 32, littleEndian: this.le, machine, flags };

    const phdrs = this.readPhdrs(phoff, phentsize, phnum);
    this.loads = phdrs.filter((p) => p.type === PT_LOAD);
    const interpPh = phdrs.find((p) => p.type === PT_INTERP);
    const dynPh = phdrs.find((p) => p.type === PT_DYNAMIC);
    const interp = interpPh ? this.readInterp(interpPh) : null;

    const file: ElfFile = {
      ...identity,
      name: src.name,
      size: src.size,
      osabi: ident[7],
      type,
      interp,
      hasDynamic: !!dynPh,
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
    if (dynPh) this.readDynamic(dynPh, file, opts);
    for (const p of phdrs) if (p.type === PT_NOTE) this.readNotes(p, file);

    let armArch: number | undefined;
    if (machine === EM_ARM) armArch = readArmCpuArch(src, this.is64, this.le, eh);
    const platform = platformOf(identity, armArch);
    if (typeof platform === 'string') file.platformError = platform;
    else file.platform = platform;
    file.kind = classify(file);
    return file;
  }

  private readPhdrs(phoff: number, phentsize: number, phnum: number): Phdr[] {
    if (phnum === 0) return [];
    if (phnum === 0xffff) this.fail('PN_XNUM program header count is not supported');
    if (phnum > LIMITS.phnum) this.fail(`too many program headers (${phnum})`);
    const want = this.is64 ? 56 : 32;
    if (phentsize !== want) this.fail(`invalid program header size ${phentsize} (expected ${want})`);
    if (phoff < 0 || phoff + phnum * phentsize > this.src.size) this.fail('program headers lie outside the file (truncated?)');
    const dv = this.dv(this.src.read(phoff, phnum * phentsize));
    const out: Phdr[] = [];
    for (let i = 0; i < phnum; i++) {
      const b = i * phentsize;
      if (this.is64) {
        out.push({
          type: dv.getUint32(b, this.le),
          offset: this.word(dv, b + 8),
          vaddr: this.word(dv, b + 16),
          filesz: this.word(dv, b + 32),
          align: this.word(dv, b + 48),
        });
      } else {
        out.push({
          type: dv.getUint32(b, this.le),
          offset: dv.getUint32(b + 4, this.le),
          vaddr: dv.getUint32(b + 8, this.le),
          filesz: dv.getUint32(b + 16, this.le),
          align: dv.getUint32(b + 28, this.le),
        });
      }
    }
    return out;
  }

  private readInterp(p: Phdr): string {
    if (p.filesz < 2 || p.filesz > 4096) this.fail(`PT_INTERP has invalid size ${p.filesz}`);
    if (p.offset < 0 || p.offset + p.filesz > this.src.size) this.fail('PT_INTERP lies outside the file (truncated?)');
    const b = this.src.read(p.offset, p.filesz);
    if (b[b.length - 1] !== 0) this.fail('PT_INTERP is not NUL-terminated');
    const nul = b.indexOf(0);
    const s = utf8.decode(b.subarray(0, nul));
    if (s === '') this.fail('PT_INTERP is empty');
    return s;
  }

  /** File offset of `len` bytes at virtual address `va`, through the PT_LOAD segment that holds them. */
  private vaToOff(va: number, len: number): number | null {
    if (va < 0) return null;
    for (const p of this.loads) {
      if (p.vaddr < 0 || p.offset < 0 || p.filesz < 0) continue;
      if (va >= p.vaddr && va + len <= p.vaddr + p.filesz) {
        const off = va - p.vaddr + p.offset;
        return off + len <= this.src.size ? off : null;
      }
    }
    return null;
  }

  /** How many bytes are mapped from the file from `va` to the end of its segment (0 when unmapped). */
  private mappedFrom(va: number): number {
    for (const p of this.loads) {
      if (p.vaddr < 0 || p.offset < 0 || p.filesz < 0) continue;
      if (va >= p.vaddr && va < p.vaddr + p.filesz) {
        const off = va - p.vaddr + p.offset;
        return Math.max(0, Math.min(p.vaddr + p.filesz - va, this.src.size - off));
      }
    }
    return 0;
  }

  private readAt(va: number, len: number, what: string): DataView {
    const off = this.vaToOff(va, len);
    if (off === null) this.fail(`${what} at 0x${va.toString(16)} is not inside any PT_LOAD segment`);
    return this.dv(this.src.read(off, len));
  }

  private readDynamic(p: Phdr, file: ElfFile, opts: ReadOptions): void {
    const ent = this.is64 ? 16 : 8;
    if (p.offset < 0 || p.filesz < 0 || p.offset + p.filesz > this.src.size) this.fail('PT_DYNAMIC lies outside the file (truncated?)');
    const count = Math.min(Math.floor(p.filesz / ent), LIMITS.dynEntries);
    const dv = this.dv(this.src.read(p.offset, count * ent));
    const needed: number[] = [];
    const filters: number[] = [];
    const tags = new Map<number, number>();
    let soname = -1;
    let rpath = -1;
    let runpath = -1;
    for (let i = 0; i < count; i++) {
      const b = i * ent;
      const tag = this.is64 ? Number(dv.getBigInt64(b, this.le)) : dv.getInt32(b, this.le);
      const val = this.word(dv, b + (this.is64 ? 8 : 4));
      if (tag === DT_NULL) break;
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
        default:
          if (!tags.has(tag)) tags.set(tag, val);
      }
    }
    file.dtFlags = (tags.get(DT_FLAGS) ?? 0) >>> 0;
    file.flags1 = (tags.get(DT_FLAGS_1) ?? 0) >>> 0;
    const hasStrings = needed.length || filters.length || soname >= 0 || rpath >= 0 || runpath >= 0 || tags.has(DT_VERNEED) || tags.has(DT_VERDEF) || opts.symbols;
    if (!hasStrings) return;
    const strtab = this.readStrtab(tags.get(DT_STRTAB), tags.get(DT_STRSZ));
    if (!strtab) {
      if (needed.length || soname >= 0 || rpath >= 0 || runpath >= 0) this.fail('PT_DYNAMIC names libraries but has no usable DT_STRTAB');
      return;
    }
    file.needed = needed.map((o) => strtab.get(o, 'DT_NEEDED'));
    file.filters = filters.map((o) => strtab.get(o, 'DT_FILTER'));
    if (soname >= 0) file.soname = strtab.get(soname, 'DT_SONAME');
    if (rpath >= 0) file.rpath = strtab.get(rpath, 'DT_RPATH', LIMITS.pathListLength);
    if (runpath >= 0) file.runpath = strtab.get(runpath, 'DT_RUNPATH', LIMITS.pathListLength);
    const verneed = tags.get(DT_VERNEED);
    if (verneed !== undefined) file.versionNeeds = this.readVerneed(verneed, tags.get(DT_VERNEEDNUM) ?? 0, strtab);
    const verdef = tags.get(DT_VERDEF);
    if (verdef !== undefined) file.versionDefs = this.readVerdef(verdef, tags.get(DT_VERDEFNUM) ?? 0, strtab);
    if (opts.symbols) file.imports = this.readImports(tags, strtab);
  }

  private readStrtab(va: number | undefined, strsz: number | undefined): StringTable | null {
    if (va === undefined) return null;
    const avail = this.mappedFrom(va);
    if (avail === 0) this.fail(`DT_STRTAB at 0x${va.toString(16)} is not inside any PT_LOAD segment`);
    const size = Math.min(strsz !== undefined && strsz >= 0 ? strsz : avail, avail, LIMITS.strtabBytes);
    const off = this.vaToOff(va, size)!;
    return new StringTable(this.src.name, this.src, off, size, strsz ?? size);
  }

  private readVerneed(va: number, num: number, strtab: StringTable): VersionNeed[] {
    const out: VersionNeed[] = [];
    let budget = LIMITS.versionEntries;
    let cur = va;
    for (let i = 0; i < num; i++) {
      const vn = this.readAt(cur, 16, 'a version-needed entry');
      const cnt = vn.getUint16(2, this.le);
      const fileName = strtab.get(vn.getUint32(4, this.le), 'Verneed vn_file');
      const versions: string[] = [];
      let aux = cur + vn.getUint32(8, this.le);
      for (let j = 0; j < cnt; j++) {
        if (--budget < 0) this.fail('too many version entries');
        const a = this.readAt(aux, 16, 'a version-needed aux entry');
        versions.push(strtab.get(a.getUint32(8, this.le), 'Vernaux vna_name'));
        const next = a.getUint32(12, this.le);
        if (next === 0) break;
        aux += next;
      }
      out.push({ file: fileName, versions });
      const next = vn.getUint32(12, this.le);
      if (next === 0 || --budget < 0) break;
      cur += next;
    }
    return out;
  }

  private readVerdef(va: number, num: number, strtab: StringTable): string[] {
    const out: string[] = [];
    let cur = va;
    for (let i = 0; i < Math.min(num, LIMITS.versionEntries); i++) {
      const vd = this.readAt(cur, 20, 'a version-definition entry');
      const flags = vd.getUint16(2, this.le);
      const cnt = vd.getUint16(6, this.le);
      if (cnt > 0 && !(flags & 1)) {
        const a = this.readAt(cur + vd.getUint32(12, this.le), 8, 'a version-definition aux entry');
        out.push(strtab.get(a.getUint32(0, this.le), 'Verdaux vda_name'));
      }
      const next = vd.getUint32(16, this.le);
      if (next === 0) break;
      cur += next;
    }
    return out;
  }

  private symbolCount(tags: Map<number, number>): number {
    const hash = tags.get(DT_HASH);
    if (hash !== undefined) return this.readAt(hash, 8, 'DT_HASH').getUint32(4, this.le);
    const gnu = tags.get(DT_GNU_HASH);
    if (gnu === undefined) return 0;
    const h = this.readAt(gnu, 16, 'DT_GNU_HASH');
    const nbuckets = h.getUint32(0, this.le);
    const symoffset = h.getUint32(4, this.le);
    const bloomSize = h.getUint32(8, this.le);
    if (nbuckets > LIMITS.symbols || bloomSize > LIMITS.symbols) this.fail('DT_GNU_HASH header is implausible');
    const bucketsVa = gnu + 16 + bloomSize * (this.is64 ? 8 : 4);
    const buckets = this.readAt(bucketsVa, nbuckets * 4, 'DT_GNU_HASH buckets');
    let max = 0;
    for (let i = 0; i < nbuckets; i++) max = Math.max(max, buckets.getUint32(i * 4, this.le));
    if (max < symoffset) return symoffset;
    const chainVa = bucketsVa + nbuckets * 4;
    for (let i = max; i < LIMITS.symbols; i++) {
      const v = this.readAt(chainVa + (i - symoffset) * 4, 4, 'DT_GNU_HASH chain').getUint32(0, this.le);
      if (v & 1) return i + 1;
    }
    this.fail('DT_GNU_HASH chain does not end');
  }

  private readImports(tags: Map<number, number>, strtab: StringTable): string[] {
    const symtab = tags.get(DT_SYMTAB);
    if (symtab === undefined) return [];
    const syment = tags.get(DT_SYMENT) ?? (this.is64 ? 24 : 16);
    if (syment !== (this.is64 ? 24 : 16)) this.fail(`invalid DT_SYMENT ${syment}`);
    const count = Math.min(this.symbolCount(tags), LIMITS.symbols);
    if (count === 0) return [];
    const dv = this.readAt(symtab, count * syment, 'the dynamic symbol table');
    const out: string[] = [];
    for (let i = 1; i < count; i++) {
      const b = i * syment;
      const nameOff = dv.getUint32(b, this.le);
      const info = dv.getUint8(b + (this.is64 ? 4 : 12));
      const shndx = dv.getUint16(b + (this.is64 ? 6 : 14), this.le);
      const bind = info >> 4;
      if (shndx !== 0 || nameOff === 0 || (bind !== 1 && bind !== 2)) continue;
      out.push(strtab.get(nameOff, 'symbol name'));
    }
    return out;
  }

  private readNotes(p: Phdr, file: ElfFile): void {
    if (p.offset < 0 || p.filesz <= 0 || p.offset + p.filesz > this.src.size) return;
    const len = Math.min(p.filesz, LIMITS.notesBytes);
    const dv = this.dv(this.src.read(p.offset, len));
    const align = p.align === 8 ? 8 : 4;
    const pad = (n: number) => (n + align - 1) & ~(align - 1);
    let o = 0;
    while (o + 12 <= len) {
      const namesz = dv.getUint32(o, this.le);
      const descsz = dv.getUint32(o + 4, this.le);
      const ntype = dv.getUint32(o + 8, this.le);
      const nameOff = o + 12;
      const descOff = nameOff + pad(namesz);
      const end = descOff + pad(descsz);
      if (namesz > len || descsz > len || end > len + align) break;
      const name = utf8.decode(new Uint8Array(dv.buffer, dv.byteOffset + nameOff, Math.max(0, Math.min(namesz, len - nameOff) - 1)));
      if (name === 'GNU' && ntype === 1 && descsz >= 16 && descOff + 16 <= len) {
        const os = dv.getUint32(descOff, this.le);
        const v = [4, 8, 12].map((k) => dv.getUint32(descOff + k, this.le)).join('.');
        file.abiTag = { os: ['Linux', 'GNU', 'Solaris2', 'FreeBSD'][os] ?? `os ${os}`, version: v };
      } else if (name === 'Go' && ntype === 4) {
        file.isGo = true;
      }
      o = end;
    }
  }
}

/** The dynamic string table, read in pages on demand: the few names the resolver needs cost a few small reads. */
class StringTable {
  private static readonly PAGE = 4096;
  private pages = new Map<number, Uint8Array>();

  constructor(
    private readonly file: string,
    private readonly src: ByteSource,
    private readonly fileOffset: number,
    private readonly size: number,
    private readonly declaredSize: number,
  ) {}

  private page(i: number): Uint8Array {
    let p = this.pages.get(i);
    if (!p) {
      const start = i * StringTable.PAGE;
      p = this.src.read(this.fileOffset + start, Math.min(StringTable.PAGE, this.size - start));
      this.pages.set(i, p);
    }
    return p;
  }

  get(off: number, what: string, max: number = LIMITS.stringLength): string {
    if (off < 0 || off >= this.declaredSize || off >= this.size) {
      throw new ElfError(this.file, `${what} string offset ${off} is outside the string table`);
    }
    const P = StringTable.PAGE;
    const chunks: Uint8Array[] = [];
    let len = 0;
    for (let pos = off; pos < this.size && len <= max; ) {
      const pg = this.page(Math.floor(pos / P));
      const from = pos % P;
      const nul = pg.indexOf(0, from);
      if (nul >= 0) {
        chunks.push(pg.subarray(from, nul));
        len += nul - from;
        if (len > max) break;
        return utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      }
      chunks.push(pg.subarray(from));
      len += pg.length - from;
      pos += pg.length - from;
    }
    throw new ElfError(this.file, `${what} string at ${off} is unterminated or too long`);
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
