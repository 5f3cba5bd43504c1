import { parseSize } from '../builder/spec.js';
import { Cache, defaultCacheDir } from '../oci/cache.js';
import { UsageError } from './errors.js';
import { humanSize } from './format.js';
import type { CacheArgs } from './options.js';

/** `ocislim cache info|prune`. */
export async function cacheCommand(a: CacheArgs, out: (s: string) => void): Promise<number> {
  let max = 0;
  if (a.maxSize !== undefined) {
    try {
      max = parseSize(a.maxSize);
    } catch {
      throw new UsageError(`--max-size "${a.maxSize}" must be a size such as 500M or 2G`);
    }
  }
  const cache = new Cache(defaultCacheDir());
  if (a.action === 'info') {
    const u = cache.usage();
    out(`${cache.dir}: ${humanSize(u.bytes)} in ${u.blobs} blobs, ${u.layers} layers, ${u.builds} remembered builds (cap ${humanSize(cache.maxBytes)})`);
    return 0;
  }
  // Asked for by the user: nothing is spared for being recent (a build running right now may have to rebuild a layer).
  const r = cache.prune(max, 0);
  out(`${cache.dir}: removed ${r.removed} blobs (${humanSize(r.freed)}), kept ${r.kept} (${humanSize(r.keptBytes)})`);
  return 0;
}
