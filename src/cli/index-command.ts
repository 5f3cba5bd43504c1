import type { Image } from '../oci/image.js';
import { platformOfConfig } from '../oci/image.js';
import { assembleIndex, imagesOf, isImageIndex } from '../oci/index.js';
import { MT } from '../oci/mediatypes.js';
import { formatPlatform } from '../oci/platform.js';
import { UsageError, UserError } from './errors.js';
import type { IndexArgs } from './options.js';
import { imageRefArg, pushTargetArg, pushTo } from './refs.js';
import { registryAccess } from './registry.js';
import { artifactJson, ciFilesArg, writeCiFiles } from './result.js';
import type { Log } from '../log.js';

/**
 * `ocislim index create REF SOURCE...` and `ocislim index append REF SOURCE...` (crane index append, docker manifest
 * create): images from registries, layouts or archives put into one index at REF. A source that is itself an index
 * brings every image it lists. Images keep their digests; blobs the target registry has are skipped, blobs of
 * another repository of that registry are mounted, the rest uploaded.
 */
export async function indexCommand(a: IndexArgs, out: (s: string) => void, log: Log): Promise<number> {
  if (a.action !== 'create' && a.action !== 'append') throw new UsageError(`index ${a.action}: use create or append`);
  if (!a.sources.length) throw new UsageError(`index ${a.action} ${a.target}: name at least one image to put in it`);
  if (a.format && a.format !== 'oci' && a.format !== 'docker') throw new UsageError(`--format ${a.format}: use oci or docker`);
  const target = pushTargetArg(a.target, `index ${a.action}`, a.tag);
  if (target.kind === 'docker-archive') throw new UsageError(`index ${a.action} ${a.target}: a docker-archive holds one image; write the index to a registry, oci: or oci-archive:`);
  const sources = a.sources.map((s) => imageRefArg(s, `index ${a.action}`));
  const ci = ciFilesArg(a);
  const access = registryAccess(a, log);
  try {
    const images: Image[] = [];
    let existingType: string | undefined;
    const read = (ref: (typeof sources)[number]) => ref.readArtifact(access);
    if (a.action === 'append') {
      const base = await read(imageRefArg(a.target, 'index append'));
      if (isImageIndex(base)) existingType = base.mediaType;
      images.push(...imagesOf(base));
    }
    for (const [i, s] of sources.entries()) {
      for (const img of imagesOf(await read(s))) {
        const twin = images.find((x) => formatPlatform(platformOfConfig(x.config)) === formatPlatform(platformOfConfig(img.config)));
        if (twin?.digest === img.digest) continue; // already listed: appending it again changes nothing
        if (twin) throw new UserError(`${a.sources[i]}: the index already has an image for ${formatPlatform(platformOfConfig(img.config))} (${twin.digest})`);
        images.push(img);
      }
    }
    // An appended index keeps its kind; a new one is a Docker manifest list only when every image is Docker schema 2.
    const format = a.format ?? (existingType ? (existingType === MT.dockerManifestList ? 'docker' : 'oci') : images.every((i) => i.manifest.mediaType === MT.dockerManifest) ? 'docker' : 'oci');
    const idx = assembleIndex(images, format as 'oci' | 'docker', undefined, `index ${a.action} ${a.target}`);
    for (const img of idx.images) log.info(`${formatPlatform(platformOfConfig(img.config))}: ${img.digest}`);
    const pushed = await pushTo(idx, target, a.tag ?? [], access);
    const j = artifactJson(idx, target.kind === 'registry' ? { pushed: [pushed] } : { outputs: [{ ref: pushed.ref }] });
    writeCiFiles(ci, j, target.kind === 'registry' ? [pushed] : []);
    out(a.json ? JSON.stringify(j, null, 2) : pushed.ref);
    return 0;
  } finally {
    await access.pool.close();
  }
}
