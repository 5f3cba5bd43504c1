// ELF constants used by the reader (names as in glibc's elf/elf.h).
export const ET_EXEC = 2;
export const ET_DYN = 3;

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;

export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_HASH = 4;
export const DT_STRTAB = 5;
export const DT_SYMTAB = 6;
export const DT_STRSZ = 10;
export const DT_SYMENT = 11;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_RUNPATH = 29;
export const DT_FLAGS = 30;
export const DT_GNU_HASH = 0x6ffffef5;
export const DT_VERSYM = 0x6ffffff0;
export const DT_FLAGS_1 = 0x6ffffffb;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;
export const DT_AUXILIARY = 0x7ffffffd;
export const DT_FILTER = 0x7fffffff;

export const DF_ORIGIN = 0x1;
export const DF_1_NODEFLIB = 0x800;
export const DF_1_PIE = 0x08000000;

export const EM_386 = 3;
export const EM_MIPS = 8;
export const EM_PPC = 20;
export const EM_PPC64 = 21;
export const EM_S390 = 22;
export const EM_ARM = 40;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_RISCV = 243;
export const EM_LOONGARCH = 258;

export const SHT_ARM_ATTRIBUTES = 0x70000003;

/** Bounds from the hardening checklist: nothing a hostile file says can make us loop or allocate past these. */
export const LIMITS = {
  phnum: 4096,
  dynEntries: 1 << 16,
  needed: 1024,
  stringLength: 4096,
  /** RPATH and RUNPATH: glibc sets no limit, and Bazel, Nix and conda write lists far past PATH_MAX. */
  pathListLength: 1 << 20,
  strtabBytes: 64 << 20,
  symbols: 1 << 22,
  versionEntries: 1 << 14,
  notesBytes: 1 << 20,
};
