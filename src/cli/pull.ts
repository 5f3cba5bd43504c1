import { formatPlatform } from '../oci/platform.js';
import { isImageIndex } from '../oci/index.js';
import { platformFlag } from './platform.js';
import { UsageError } from './errors.js';
import { imageRefArg, localRefArg, writeOrSay } from './refs.js';
import { registryAccess } from './registry.js';
import type { PullArgs } from './options.js';
import type { Log } from '../log.js';
import { artifactJson, ciFilesArg, localTag, writeCiFiles, Written } from './result.js';


/** `ocislim pull REF -o oci:DIR`: a registry image to a local layout or archive (blobs verified on the way). */
export async function pullCommand(a: PullArgs, out: (s: string) => void, log: Log): Promise<number> {
  const outputs = a.output.map((o) => localRefArg(o, '-o'));
  if (!outputs.length) throw new UsageError('say where the image goes: -o oci:DIR[:TAG], -o oci-archive:FILE[:TAG] or -o docker-archive:FILE[:NAME:TAG]');
  const p = platformFlag(a.platform);
  const platform = p === 'all' ? undefined : p;
  if (p === 'all') for (const o of outputs) if (o.kind === 'docker-archive') throw new UsageError(`-o ${o}: a docker-archive holds one image; with --platform all write oci: or oci-archive:`);
  const source = imageRefArg(a.source, 'pull');
  const ci = ciFilesArg(a);
  const access = registryAccess(a, log);
  try {
    // --platform all: the whole index with every image; otherwise one image (the only one, or linux/amd64).
    const img = p === 'all' ? await source.readArtifact(access) : await source.read({ ...access, platform });
    const written: Written[] = [];
    for (const o of outputs) {
      const w = await writeOrSay(o, img);
      written.push({ ref: w.ref, tag: localTag(w.ref, o) });
      const what = isImageIndex(img) ? ` (${img.images.length} platforms)` : platform ? ` (${formatPlatform(platform)})` : '';
      log.info(`wrote ${w.ref}${what}`);
    }
    const j = artifactJson(img, { outputs: written });
    writeCiFiles(ci, j, []);
    out(a.json ? JSON.stringify(j, null, 2) : img.digest);
    return 0;
  } finally {
    await access.pool.close();
  }
}
