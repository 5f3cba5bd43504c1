import { formatPlatform, parsePlatform, Platform, platformMatches } from '../oci/platform.js';
import { UsageError } from './errors.js';
import { platformFlag } from './platform.js';

/** One image to build: a root filesystem and the platform its ELF files must be (when the user named one). */
export interface BuildTarget {
  root: string;
  platform?: Platform;
  /** The flag that named this root, for messages: "--root linux/arm64=./sysroot". */
  label?: string;
}

/** PLATFORM=DIR with PLATFORM as os/arch[/variant]; anything else is a plain directory (which may contain "="). */
const PLATFORM_ROOT = /^([a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9.]+)?)=(.+)$/;

/**
 * --root (repeatable) and --platform → the images to build. A plain `--root DIR` (or none: /) is one image, with
 * --platform checked against its ELF files. `--root PLATFORM=DIR`, once per platform, is one image per root; the
 * build then writes an index. --platform with such roots picks some of them (a comma list), or "all" (the default)
 * builds every one. "all" is never a platform name.
 */
export function buildTargets(roots: string | string[] | undefined, platform: string | undefined): BuildTarget[] {
  // yargs gives a repeated flag as an array, a single one as a string.
  const given = ([] as string[]).concat(roots ?? []).filter((r) => r !== '');
  const perPlatform: BuildTarget[] = [];
  const plain: string[] = [];
  for (const r of given) {
    const m = PLATFORM_ROOT.exec(r);
    if (!m) {
      plain.push(r);
      continue;
    }
    let p: Platform;
    try {
      p = parsePlatform(m[1]);
    } catch (e) {
      throw new UsageError(`--root ${r}: ${(e as Error).message}`);
    }
    const twin = perPlatform.find((t) => platformMatches(t.platform, p));
    if (twin) throw new UsageError(`--root ${r}: two roots for ${formatPlatform(p)} (${twin.root} and ${m[2]}); give one root per platform`);
    perPlatform.push({ root: m[2], platform: p, label: `--root ${r}` });
  }
  const list = platform?.split(',').map((s) => s.trim());
  if (!perPlatform.length) {
    if (plain.length > 1) throw new UsageError(`--root is given ${plain.length} times (${plain.join(', ')}); for several platforms give --root PLATFORM=DIR for each`);
    if (list && (list.length > 1 || list[0] === 'all')) throw new UsageError(`--platform ${platform}: building for several platforms needs one --root PLATFORM=DIR per platform`);
    const p = platformFlag(platform);
    return [{ root: plain[0] ?? '/', platform: p === 'all' ? undefined : p }];
  }
  if (plain.length) throw new UsageError(`--root ${plain[0]}: with --root PLATFORM=DIR, every root names its platform`);
  if (!list || (list.length === 1 && list[0] === 'all')) return perPlatform;
  const picked: BuildTarget[] = [];
  for (const s of list) {
    const p = platformFlag(s);
    if (p === 'all' || p === undefined) throw new UsageError(`--platform ${platform}: "all" stands alone`);
    const t = perPlatform.find((x) => platformMatches(x.platform, p));
    if (!t) throw new UsageError(`--platform ${formatPlatform(p)}: no --root for it (roots: ${perPlatform.map((x) => formatPlatform(x.platform!)).join(', ')})`);
    if (!picked.includes(t)) picked.push(t);
  }
  return picked;
}
