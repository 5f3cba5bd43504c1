import { EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_MIPS, EM_PPC, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64 } from './constants.js';

import type { Platform } from '../oci/platform.js';

export interface ElfIdentity {
  elfClass: 32 | 64;
  littleEndian: boolean;
  machine: number;
  flags: number;
}

const EF_ARM_ABI_FLOAT_HARD = 0x400;
const EF_MIPS_ABI2 = 0x20;

/**
 * Maps an ELF identity to its OCI platform, or returns a reason why it has none.
 * `armArch` is Tag_CPU_arch from .ARM.attributes when the file has it.
 */
export function platformOf(id: ElfIdentity, armArch?: number): Platform | string {
  const { elfClass, littleEndian: le, machine, flags } = id;
  const p = (architecture: string, variant?: string): Platform => (variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture });
  switch (machine) {
    case EM_X86_64:
      return elfClass === 64 ? p('amd64') : 'x32 (32-bit x86-64) is not an OCI architecture';
    case EM_386:
      return p('386');
    case EM_AARCH64:
      return le ? p('arm64') : p('arm64be');
    case EM_ARM:
      return p('arm', armVariant(flags, armArch));
    case EM_PPC64:
      return le ? p('ppc64le') : p('ppc64');
    case EM_PPC:
      return p('ppc');
    case EM_S390:
      return elfClass === 64 ? p('s390x') : p('s390');
    case EM_RISCV:
      return elfClass === 64 ? p('riscv64') : 'riscv32 is not an OCI architecture';
    case EM_LOONGARCH:
      return elfClass === 64 ? p('loong64') : 'loongarch32 is not an OCI architecture';
    case EM_MIPS:
      if (elfClass === 32 && flags & EF_MIPS_ABI2) return 'MIPS n32 is not an OCI architecture';
      return p(elfClass === 64 ? (le ? 'mips64le' : 'mips64') : le ? 'mipsle' : 'mips');
    default:
      return `ELF machine ${machine} has no OCI architecture`;
  }
}

/** Tag_CPU_arch values (ARM ABI addenda): 1-5 are v4..v5TEJ, 6-9 and 11-12 v6 flavours, 10 and 13 v7, 14+ v8. */
function armVariant(flags: number, cpuArch?: number): string {
  if (cpuArch !== undefined) {
    if (cpuArch <= 5) return 'v5';
    if (cpuArch === 10 || cpuArch === 13) return 'v7';
    if (cpuArch >= 14) return 'v8';
    return 'v6';
  }
  // Without attributes: hard-float means Debian's armhf (v7); soft-float is armel, which containerd calls v6.
  return flags & EF_ARM_ABI_FLOAT_HARD ? 'v7' : 'v6';
}

/**
 * Whether a library may satisfy an object of identity `want`: the loader's own check (class and machine), plus the
 * float ABI bits of ARM, MIPS and RISC-V as pax-utils' is_compatible does.
 */
export function compatible(want: ElfIdentity, have: ElfIdentity): boolean {
  if (want.elfClass !== have.elfClass || want.machine !== have.machine || want.littleEndian !== have.littleEndian) return false;
  switch (want.machine) {
    case EM_ARM:
      return (want.flags & EF_ARM_ABI_FLOAT_HARD) === (have.flags & EF_ARM_ABI_FLOAT_HARD);
    case EM_RISCV:
      return (want.flags & 0x7) === (have.flags & 0x7);
    case EM_MIPS:
      return (want.flags & EF_MIPS_ABI2) === (have.flags & EF_MIPS_ABI2);
    default:
      return true;
  }
}
