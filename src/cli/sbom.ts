import { parsePlatform } from '../oci/platform.js';
import { SbomFormat } from '../packages/sbom-documents.js';
import { LocalImageRef } from '../refs/image-ref.js';
import { readSbom } from '../refs/image-sbom.js';
import type { Log } from '../log.js';
import type { SbomArgs } from './options.js';
import { imageRefArg } from './refs.js';

/** `ocislim sbom IMAGE`: the attached SBOM when there is one, else one built from the image's package records. */
export async function sbomCommand(a: SbomArgs, out: (s: string) => void, log: Log): Promise<number> {
  const format = a.format as SbomFormat | undefined;
  const platform = a.platform ? parsePlatform(a.platform) : undefined;
  const ref = imageRefArg(a.image, 'IMAGE');
  const access = ref instanceof LocalImageRef ? null : (await import('./registry.js')).registryAccess(a, log);
  try {
    const r = await readSbom(ref, { ...access, platform, format, log });
    if (r.attached) log.info(`attached SBOM ${r.attached.digest} of ${r.image.digest}`);
    else log.info(`no SBOM attached to ${r.image.digest}: built one from the image's files`);
    out(r.document.toString('utf8').replace(/\n$/, ''));
    return 0;
  } finally {
    await access?.pool.close();
  }
}
