import { parsePlatform, Platform, PlatformError } from '../oci/platform.js';
import { UsageError } from './errors.js';

/**
 * --platform VALUE: one platform (os/arch[/variant], or arch for linux/arch), or "all" for every platform of a
 * multi-platform image. "all" is a word, never an architecture: "linux/all" is an error.
 */
export function platformFlag(value: string | undefined, flag = '--platform'): Platform | 'all' | undefined {
  if (value === undefined) return undefined;
  if (value === 'all') return 'all';
  try {
    return parsePlatform(value);
  } catch (e) {
    if (e instanceof PlatformError) throw new UsageError(`${flag} ${value}: ${e.message}`);
    throw e;
  }
}
