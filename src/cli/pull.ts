import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { RegistryError } from '../registry/errors.js';
import { UsageError, UserError } from './errors.js';
import { imageRefArg, localRefArg } from './refs.js';
import { registryAccess, registryMessage } from './registry.js';
import type { PullArgs } from './options.js';
import type { Log } from '../log.js';
import { ciFilesArg, imageJson, localTag, writeCiFiles, Written } from './result.js';


/** `ocislim pull REF -o oci:DIR`: a registry image to a local layout or archive (blobs verified on the way). */
export async function pullCommand(a: PullArgs, out: (s: string) => void, log: Log): Promise<number> {
  const outputs = a.output.map((o) => localRefArg(o, '-o'));
  if (!outputs.length) throw new UsageError('say where the image goes: -o oci:DIR[:TAG], -o oci-archive:FILE[:TAG] or -o docker-archive:FILE[:NAME:TAG]');
  let platform;
  try {
    platform = a.platform ? parsePlatform(a.platform) : undefined;
  } catch (e) {
    throw new UsageError(`--platform: ${(e as Error).message}`);
  }
  const source = imageRefArg(a.source, 'pull');
  const ci = ciFilesArg(a);
  const access = registryAccess(a, log);
  try {
    const img = await source.read({ ...access, platform });
    const written: Written[] = [];
    for (const o of outputs) {
      const w = await o.write(img);
      written.push({ ref: w.ref, tag: localTag(w.ref, o) });
      log.info(`wrote ${w.ref}${platform ? ` (${formatPlatform(platform)})` : ''}`);
    }
    const j = imageJson(img, { outputs: written });
    writeCiFiles(ci, j, []);
    out(a.json ? JSON.stringify(j, null, 2) : img.digest);
    return 0;
  } catch (e) {
    if (e instanceof RegistryError) throw new UserError(registryMessage(e));
    if (e instanceof UserError) throw e;
    throw new UserError(`pull ${a.source}: ${(e as Error).message}`);
  } finally {
    await access.pool.close();
  }
}
