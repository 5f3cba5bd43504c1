import { imageRefArg, pushTargetArg, pushTo } from './refs.js';
import { registryAccess } from './registry.js';
import { platformFlag } from './platform.js';
import type { PushArgs } from './options.js';
import type { Log } from '../log.js';
import { artifactJson, ciFilesArg, writeCiFiles } from './result.js';


/**
 * `ocislim push SRC REF`: an image built earlier (oci:, oci-archive:, docker-archive:, or another registry); a
 * multi-platform image goes as its index with every image, unless --platform picks one.
 */
export async function pushCommand(a: PushArgs, out: (s: string) => void, log: Log): Promise<number> {
  const p = platformFlag(a.platform);
  const source = imageRefArg(a.source, 'push');
  const target = pushTargetArg(a.target, 'push', a.tag);
  const ci = ciFilesArg(a);
  const access = registryAccess(a, log);
  try {
    const img = await source.readArtifact({ ...access, platform: p === 'all' ? undefined : p });
    const pushed = await pushTo(img, target, a.tag ?? [], access);
    const j = artifactJson(img, { pushed: [pushed] });
    writeCiFiles(ci, j, [pushed]);
    out(a.json ? JSON.stringify(j, null, 2) : pushed.ref);
    return 0;
  } finally {
    await access.pool.close();
  }
}
