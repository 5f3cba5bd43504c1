import { readFileSync } from 'node:fs';
import { readRootText, scanRootFile } from './rootfile.js';
import { posix } from 'node:path';
import { EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_MIPS, EM_PPC, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64 } from './constants.js';
import { ElfFile } from './reader.js';
import { RootFs } from './rootfs.js';

export type Flavour = 'glibc' | 'musl';

/** What the target's dynamic loader searches: everything the resolver needs that is not in the object itself. */
export interface LoaderModel {
  flavour: Flavour;
  /** The loader's built-in ("system", "trusted") directories, in order. */
  defaultDirs: string[];
  /** $LIB expansion. */
  lib: string;
  /** $PLATFORM expansion (the kernel's AT_PLATFORM). */
  platform: string;
  /** glibc-hwcaps subdirectory names to try, best first. Empty: baseline only. */
  hwcaps: string[];
  /**
   * Legacy hwcap subdirectories (glibc <= 2.36) tried in every search directory after glibc-hwcaps and before the
   * directory itself, e.g. tls/x86_64/x86_64 ... x86_64. Empty for glibc 2.37+ and musl.
   */
  legacy: string[];
  /** musl: the directories from /etc/ld-musl-ARCH.path, or null when that file is absent. */
  muslPath: string[] | null;
  /** musl: the loader's ARCH name (x86_64, aarch64...). */
  muslArch?: string;
}

export function flavourOf(interp: string): Flavour {
  return /^ld-musl-/.test(posix.basename(interp)) ? 'musl' : 'glibc';
}

/**
 * glibc keeps its system directories as one NUL-separated string constant (system_dirs, elf/dl-load.c). Reading it
 * out of ld.so gives the exact list for any distribution and architecture without running the loader.
 */
export function systemDirsFromLdso(bytes: Uint8Array): string[] | null {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The list's bytes are NULs and printable ASCII, and it holds "/\0/" where one directory ends and the next begins:
  // only the runs of such bytes around each "/\0/" (found by memmem) are decoded and matched, not the whole loader
  // (a regular expression over 200+ KB of text was a tenth of ldd's start-up). A match never crosses a byte outside
  // the run, so each run gives the matches a scan of the whole file gives there, in the same order.
  const inList = (c: number) => c === 0 || (c >= 0x21 && c <= 0x7e);
  for (let from = 0; ; ) {
    const hit = b.indexOf(DIR_SEPARATOR, from);
    if (hit < 0) return null;
    let start = hit;
    while (start > 0 && inList(b[start - 1])) start--;
    let end = hit + DIR_SEPARATOR.length;
    while (end < b.length && inList(b[end])) end++;
    const s = b.toString('latin1', start, end);
    const re = /((?:\/[\x21-\x7e]*\/\x00){2,})\x00/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s))) {
      const dirs = m[1].split('\0').filter(Boolean);
      if (dirs.some((d) => d === '/lib/' || d === '/usr/lib/' || d === '/lib64/' || d === '/usr/lib64/' || d === '/lib32/')) {
        return dirs.map((d) => d.replace(/\/+$/, ''));
      }
    }
    from = end;
  }
}
const DIR_SEPARATOR = Buffer.from('/\0/', 'latin1');

/** musl's path file is a short list of directories; anything past this is not one. */
const MAX_MUSL_PATH_FILE = 1 << 20;
/** A real ld.so is 0.2-2 MiB; its strings are never searched past this (a sparse 2 GB "loader" is not read whole). */
const MAX_LDSO_SCAN = 64 << 20;

/** What ocislim reads out of the loader binary: its system directories, and which hwcap searches its --help names. */
export interface LdsoFacts {
  systemDirs: string[] | null;
  mentionsLegacy: boolean;
  mentionsHwcaps: boolean;
}

/** Reads the loader's facts in 1 MiB windows, at most MAX_LDSO_SCAN bytes, never holding the whole file. */
export function ldsoFacts(hostPath: string, name: string): LdsoFacts {
  const f: LdsoFacts = { systemDirs: null, mentionsLegacy: false, mentionsHwcaps: false };
  scanRootFile(hostPath, name, MAX_LDSO_SCAN, (b) => {
    f.systemDirs ??= systemDirsFromLdso(b);
    f.mentionsLegacy ||= b.includes('Legacy HWCAP subdirectories');
    f.mentionsHwcaps ||= b.includes('glibc-hwcaps');
    return false;
  });
  return f;
}

/** Fallback when the constant cannot be found: multiarch when the root has it, else the upstream defaults. */
function defaultDirsTable(fs: RootFs, elf: ElfFile): string[] {
  const triplet = multiarchTriplet(elf);
  if (triplet && fs.isDirectory(`/usr/lib/${triplet}`)) return [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib'];
  if (elf.elfClass === 64 && [EM_X86_64, EM_PPC64, EM_S390, EM_LOONGARCH].includes(elf.machine)) return ['/lib64', '/usr/lib64'];
  return ['/lib', '/usr/lib'];
}

/** Debian's multiarch triplet for an ELF identity. */
export function multiarchTriplet(elf: ElfFile): string | null {
  const le = elf.littleEndian;
  switch (elf.machine) {
    case EM_X86_64:
      return elf.elfClass === 64 ? 'x86_64-linux-gnu' : 'x86_64-linux-gnux32';
    case EM_386:
      return 'i386-linux-gnu';
    case EM_AARCH64:
      return 'aarch64-linux-gnu';
    case EM_ARM:
      return elf.flags & 0x400 ? 'arm-linux-gnueabihf' : 'arm-linux-gnueabi';
    case EM_PPC64:
      return le ? 'powerpc64le-linux-gnu' : 'powerpc64-linux-gnu';
    case EM_PPC:
      return 'powerpc-linux-gnu';
    case EM_S390:
      return 's390x-linux-gnu';
    case EM_RISCV:
      return 'riscv64-linux-gnu';
    case EM_MIPS:
      return elf.elfClass === 64 ? (le ? 'mips64el-linux-gnuabi64' : 'mips64-linux-gnuabi64') : le ? 'mipsel-linux-gnu' : 'mips-linux-gnu';
    case EM_LOONGARCH:
      return 'loongarch64-linux-gnu';
    default:
      return null;
  }
}

/** AT_PLATFORM as the kernel reports it (CPU dependent on some architectures: this is the common value). */
export function platformString(elf: ElfFile): string {
  switch (elf.machine) {
    case EM_X86_64:
      return 'x86_64';
    case EM_386:
      return 'i686';
    case EM_AARCH64:
      return 'aarch64';
    case EM_ARM:
      return 'v7l';
    case EM_PPC64:
      return 'power9';
    case EM_S390:
      return 'z13';
    case EM_RISCV:
      return 'riscv64';
    case EM_MIPS:
      return elf.elfClass === 64 ? 'mips64' : 'mips';
    case EM_LOONGARCH:
      return 'loongarch';
    default:
      return '';
  }
}

/** This machine's CPU vendor and flags, read from /proc/cpuinfo once per process. */
function hostCpu(): { vendor: string; flags: Set<string> } | null {
  if (cpuInfo === undefined) cpuInfo = readHostCpu();
  return cpuInfo;
}
let cpuInfo: { vendor: string; flags: Set<string> } | null | undefined;

function readHostCpu(): { vendor: string; flags: Set<string> } | null {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const line = /^flags\s*:(.*)$/m.exec(info);
  if (!line) return null;
  return { vendor: /^vendor_id\s*:\s*(\S+)/m.exec(info)?.[1] ?? '', flags: new Set(line[1].trim().split(/\s+/)) };
}

/** x86-64 micro-architecture levels the host CPU supports (from /proc/cpuinfo), best first, as glibc-hwcaps names. */
export function hostX86Hwcaps(): string[] {
  const cpu = hostCpu();
  if (!cpu) return [];
  const has = (xs: string[]) => xs.every((x) => cpu.flags.has(x));
  const v2 = has(['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3']);
  const v3 = v2 && has(['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave']);
  const v4 = v3 && has(['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']);
  return [v4 && 'x86-64-v4', v3 && 'x86-64-v3', v2 && 'x86-64-v2'].filter((x): x is string => !!x);
}

/**
 * What glibc (sysdeps/x86/cpu-features.c, up to 2.36 at least) makes of the host CPU on x86-64: on Intel CPUs it
 * replaces AT_PLATFORM with "xeon_phi" (AVX512ER + AVX512PF) or "haswell" (AVX2, FMA, BMI1/2, LZCNT, MOVBE, POPCNT),
 * and adds the "avx512_1" hwcap (AVX512CD without ER, plus BW, DQ, VL). Both name legacy search subdirectories and
 * $PLATFORM. Only for resolving on this machine, as its own ldd does.
 */
export function hostX86Platform(): { platform: string; hwcapNames: string[] } {
  const cpu = hostCpu();
  const out = { platform: 'x86_64', hwcapNames: ['x86_64'] };
  if (!cpu || cpu.vendor !== 'GenuineIntel') return out;
  const has = (xs: string[]) => xs.every((x) => cpu.flags.has(x));
  let platform: string | null = null;
  if (has(['avx512cd'])) {
    if (has(['avx512er'])) {
      if (has(['avx512pf'])) platform = 'xeon_phi';
    } else if (has(['avx512bw', 'avx512dq', 'avx512vl'])) out.hwcapNames.unshift('avx512_1');
  }
  if (!platform && has(['avx2', 'fma', 'bmi1', 'bmi2', 'abm', 'movbe', 'popcnt'])) platform = 'haswell';
  if (platform) out.platform = platform;
  return out;
}

export interface LoaderModelOptions {
  /** glibc-hwcaps names; "host" detects what this machine's CPU supports (only meaningful for a host-arch root). */
  hwcaps?: string[] | 'host';
}

/** Builds the loader model from the loader binary found in the root. */
export function loaderModel(fs: RootFs, interp: string, interpHostPath: string | null, exe: ElfFile, opts: LoaderModelOptions = {}): LoaderModel {
  const flavour = flavourOf(interp);
  if (flavour === 'musl') {
    const muslArch = /^ld-musl-(.+)\.so\.1$/.exec(posix.basename(interp))?.[1] ?? '';
    // The path file sits at the loader's prefix (path minus two components) + /etc.
    const prefix = posix.dirname(posix.dirname(interp));
    const pathFile = posix.join(prefix, 'etc', `ld-musl-${muslArch}.path`);
    let muslPath: string[] | null = null;
    const st = fs.stat(pathFile);
    // A FIFO, a device or a huge file is an error naming it, not a hang or a runaway read.
    if (st) muslPath = readRootText(fs.hostReal(st.located), pathFile, MAX_MUSL_PATH_FILE).split(/[:\n]/).filter(Boolean);
    return { flavour, defaultDirs: ['/lib', '/usr/local/lib', '/usr/lib'], lib: 'lib', platform: '', hwcaps: [], legacy: [], muslPath, muslArch };
  }
  const hostX86 = opts.hwcaps === 'host' && exe.machine === EM_X86_64 && exe.elfClass === 64 && process.arch === 'x64';
  const cpu = hostX86 ? hostX86Platform() : null;
  let dirs: string[] | null = null;
  let legacy: string[] = [];
  if (interpHostPath) {
    try {
      const facts = ldsoFacts(interpHostPath, interp);
      dirs = facts.systemDirs;
      legacy = legacySubdirs(facts, exe, cpu ?? undefined);
    } catch {
      dirs = null;
    }
  }
  const defaultDirs = dirs ?? defaultDirsTable(fs, exe);
  let hwcaps: string[] = [];
  if (opts.hwcaps === 'host') hwcaps = hostX86 ? hostX86Hwcaps() : [];
  else if (opts.hwcaps) hwcaps = opts.hwcaps;
  return {
    flavour,
    defaultDirs,
    // $LIB is notdir(slibdir) upstream; Debian's is the multiarch path. The first system dir is slibdir in both.
    lib: defaultDirs[0].replace(/^\//, ''),
    platform: cpu?.platform ?? platformString(exe),
    hwcaps,
    legacy,
    muslPath: null,
  };
}

/**
 * glibc up to 2.36 also searches legacy hwcap subdirectories: every combination of "tls", the platform (AT_PLATFORM)
 * and the important hwcap names, longest first, as `LD_DEBUG=libs` shows on Debian 12 for x86-64:
 * tls/x86_64/x86_64, tls/x86_64, tls, x86_64/x86_64, x86_64. 2.37 removed them. Whether the loader has them is read
 * from ld.so itself: 2.33-2.36 describe them in --help; before 2.33 there is no glibc-hwcaps at all.
 * For an image, only the names every CPU of the architecture has are modelled: tls, and x86_64 (AT_PLATFORM and
 * HWCAP_X86_64) or aarch64 (AT_PLATFORM); `host` gives this machine's own platform and hwcap names (haswell, avx512_1).
 */
export function legacySubdirs(facts: Pick<LdsoFacts, 'mentionsLegacy' | 'mentionsHwcaps'>, exe: ElfFile, host?: { platform: string; hwcapNames: string[] }): string[] {
  const hasLegacy = facts.mentionsLegacy || !facts.mentionsHwcaps;
  if (!hasLegacy) return [];
  const parts = ['tls'];
  if (host) parts.push(host.platform, ...host.hwcapNames);
  else if (exe.machine === EM_X86_64 && exe.elfClass === 64) parts.push('x86_64', 'x86_64');
  else if (exe.machine === EM_AARCH64) parts.push('aarch64');
  const out: string[] = [];
  // Subsets in decreasing bitmask order, the first part as the most significant bit.
  for (let mask = (1 << parts.length) - 1; mask > 0; mask--) {
    const sub = parts.filter((_, i) => mask & (1 << (parts.length - 1 - i))).join('/');
    if (!out.includes(sub)) out.push(sub);
  }
  return out;
}
