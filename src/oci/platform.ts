/**
 * The OCI platform (image-index spec "platform"): os, architecture in GOARCH names, optional variant. The one
 * definition: ELF files map to it (elf/platform.ts), image configs and index entries carry it, and `platformMatches`
 * is the one way two of them are compared.
 */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export class PlatformError extends Error {}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/** Parses "linux/arm64", "linux/arm/v7", "arm64" (os linux). "all" is not a platform: callers that accept it check first. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.some((x) => x === '') || parts.length > 3) throw new PlatformError(`malformed platform "${s}": expected os/arch[/variant]`);
  if (parts.includes('all')) throw new PlatformError(`"${s}" is not a platform ("all" means every platform, where a command accepts it)`);
  if (parts.length === 1) return { os: 'linux', architecture: parts[0] };
  return parts[2] ? { os: parts[0], architecture: parts[1], variant: parts[2] } : { os: parts[0], architecture: parts[1] };
}

/** Variant spellings containerd normalises ("8", "v8.0" are v8). */
function variantOf(p: Platform): string | undefined {
  const v = p.variant;
  if (!v) return undefined;
  const m = /^v?(\d+)(\.0)?$/.exec(v);
  return m ? `v${m[1]}` : v;
}

/**
 * Whether two platforms can be the same: same os and architecture, and the same variant when both name one. A
 * missing variant matches any, so "linux/arm" selects linux/arm/v7, "linux/arm64" matches Docker's linux/arm64/v8,
 * and an ELF file without ARM attributes agrees with either. The one matcher: index selection, --platform against
 * the ELF files, and the ELF files of one image against each other.
 */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  const a = variantOf(have);
  const b = variantOf(want);
  return !a || !b || a === b;
}

/** The platform with fixed key order (os, architecture, variant), as configs and index entries write it. */
export function platformRecord(p: Platform): Platform {
  return p.variant ? { os: p.os, architecture: p.architecture, variant: p.variant } : { os: p.os, architecture: p.architecture };
}

/** The platform this process runs on, in OCI names (Node's process.arch), or null for one OCI has no name for. */
export function hostPlatform(): Platform | null {
  const arch = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' }[process.arch as string];
  return arch ? { os: 'linux', architecture: arch } : null;
}
