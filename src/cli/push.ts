import { imageRefArg, pushTargetArg, pushTo } from './refs.js';
import { attachTo, registryAccess } from './registry.js';
import { platformFlag } from './platform.js';
import { artifactFromLayout, layoutReferrers } from '../oci/artifact.js';
import { DirStore, TarStore } from '../oci/store.js';
import { LocalImageRef, RegistryImageRef } from '../refs/image-ref.js';
import { isImageIndex } from '../oci/index.js';
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
    // Artifacts attached to the image (each platform's image of an index) in a layout, such as an SBOM, go along.
    if (source instanceof LocalImageRef && source.kind !== 'docker-archive') {
      const store = source.kind === 'oci' ? new DirStore(source.location.path) : new TarStore(source.location.path);
      for (const subject of isImageIndex(img) ? img.images : [img]) {
        for (const found of layoutReferrers(store, subject.digest)) {
          const art = artifactFromLayout(store, found);
          if (target instanceof RegistryImageRef) await attachTo(art, target, isImageIndex(img) ? subject.digest : pushed.ref.slice(pushed.ref.lastIndexOf('@') + 1), access);
          else if (target.kind === 'oci') await target.attach(art);
        }
      }
    }
    const j = artifactJson(img, { pushed: [pushed] });
    writeCiFiles(ci, j, [pushed]);
    out(a.json ? JSON.stringify(j, null, 2) : pushed.ref);
    return 0;
  } finally {
    await access.pool.close();
  }
}
