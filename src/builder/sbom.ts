import { makeArtifact, Referrer } from '../oci/artifact.js';
import { SBOM_TOOL, sbomName } from '../packages/image-sbom.js';
import { SBOM_MEDIA_TYPE, sbomDocument, SbomFormat } from '../packages/sbom-documents.js';
import type { BuildResult } from './build-image.js';
import { BuildSpec, isoTime } from './spec.js';
import { BuildError } from './errors.js';

export interface BuildSbom {
  format: SbomFormat;
  /** The SPDX 2.3 or CycloneDX 1.6 JSON document. */
  document: Buffer;
  /** The OCI 1.1 artifact whose `subject` is the built image: give it to ImageRef.attach. */
  artifact: Referrer;
}

/**
 * The SBOM of a build (`--sbom`): its packages and files from the build's inventory, dated by the build's epoch.
 * The build must have kept its inventory (`spec.sbom` not false, or `spec.sbomDocument`).
 */
export function buildSbom(result: BuildResult, spec: BuildSpec, format: SbomFormat): BuildSbom {
  if (!result.inventory) throw new BuildError('no SBOM: the build kept no inventory of its files (sbom: false)');
  const created = isoTime(spec.epoch);
  const document = sbomDocument(format, result.inventory, { name: sbomName(result.image), digest: result.image.digest, created, tool: SBOM_TOOL });
  const subject = { mediaType: result.image.manifest.mediaType, digest: result.image.digest, size: result.image.manifestBytes.length };
  const artifact = makeArtifact(subject, SBOM_MEDIA_TYPE[format], document, { 'org.opencontainers.image.created': created }, `sbom.${format}.json`);
  return { format, document, artifact };
}
