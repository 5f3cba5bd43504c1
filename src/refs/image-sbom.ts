import type { ArtifactDescriptor } from '../oci/artifact.js';
import type { Image } from '../oci/image.js';
import { sbomFromImage } from '../packages/image-sbom.js';
import { SBOM_MEDIA_TYPE, SbomFormat } from '../packages/sbom-documents.js';
import type { ImageRef, ReadOptions } from './image-ref.js';

export interface ReadSbomOptions extends ReadOptions {
  /** Only an attached SBOM of this format, and the format of one built from the files (default SPDX). */
  format?: SbomFormat;
}

export interface ImageSbom {
  /** The image the SBOM describes (for an index: the one for `platform`). */
  image: Image;
  /** The SBOM attached to the image, or null when the document was built from the image's own files. */
  attached: ArtifactDescriptor | null;
  document: Buffer;
}

/**
 * The SBOM of an image wherever it is (`ocislim sbom`): the one attached to it (an OCI referrer, as `build --sbom`
 * leaves in layouts and registries), else one built from its files and the package records (status.d) it carries.
 */
export async function readSbom(ref: ImageRef, opts: ReadSbomOptions = {}): Promise<ImageSbom> {
  const image = await ref.read(opts);
  const artifactTypes = opts.format ? [SBOM_MEDIA_TYPE[opts.format]] : Object.values(SBOM_MEDIA_TYPE);
  for (const a of await ref.referrers(image.digest, { ...opts, artifactTypes })) {
    const document = await a.read();
    if (document) return { image, attached: a.descriptor, document };
  }
  // A registry image's layers stream through opts.pool: read them before the caller closes it.
  const document = await sbomFromImage(image, opts.format ?? 'spdx', (s) => opts.log?.info(s));
  return { image, attached: null, document };
}
