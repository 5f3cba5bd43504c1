import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { formatLocalRef, writeLocalImage } from '../oci/location.js';
import { RegistryError } from '../registry/errors.js';
import { parseOutputs } from './build.js';
import { UsageError, UserError } from './errors.js';
import { Clients, clientOptions, loadImage } from './registry.js';
import type { PullArgs } from './options.js';


/** `ocislim pull REF -o oci:DIR`: a registry image to a local layout or archive (blobs verified on the way). */
export async function pullCommand(a: PullArgs, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const outputs = parseOutputs(a.output);
  if (!outputs.length) throw new UsageError('say where the image goes: -o oci:DIR[:TAG], -o oci-archive:FILE[:TAG] or -o docker-archive:FILE[:NAME:TAG]');
  let platform;
  try {
    platform = a.platform ? parsePlatform(a.platform) : undefined;
  } catch (e) {
    throw new UsageError(`--platform: ${(e as Error).message}`);
  }
  const clients = new Clients(clientOptions(a), (s) => err(`ocislim: ${s}`));
  try {
    const img = await loadImage(a.source, clients, platform, 'pull');
    for (const o of outputs) {
      await writeLocalImage(img, o);
      err(`ocislim: wrote ${formatLocalRef(o)}${platform ? ` (${formatPlatform(platform)})` : ''}`);
    }
    out(img.digest);
    return 0;
  } catch (e) {
    if (e instanceof RegistryError) throw new UserError(e.message);
    if (e instanceof UserError) throw e;
    throw new UserError(`pull ${a.source}: ${(e as Error).message}`);
  } finally {
    await clients.close();
  }
}
