/**
 * ocislim as a library: build images from native programs, compose them, read and write them anywhere.
 *
 *   import { build, buildSbom, buildSpec, parseImageRef, readSbom, withWorkDir } from 'ocislim';
 *   await withWorkDir(async (dir) => {
 *     const spec = buildSpec({ inputs: ['/usr/bin/redis-server'], expose: ['6379'] });
 *     const result = await build(spec, dir);
 *     const ref = parseImageRef('oci:redis');
 *     await ref.write(result.image);
 *     await ref.attach(buildSbom(result, spec, 'spdx').artifact); // the SBOM as an OCI 1.1 referrer
 *   });
 *   const { document } = await readSbom(parseImageRef('registry.example.com/redis:slim'));
 *
 * Errors are typed (BuildError, ElfError, RegistryError, ReferenceError, ...), with messages that name the file or
 * reference and what is wrong.
 */
import type { BuildSpec } from './builder/spec.js';
import { sourceDateEpoch } from './builder/spec.js';

// Building: inputs -> plan -> layers -> image.
export { build, planBuild, withWorkDir } from './builder/build-image.js';
export type { BaseLoader, BuildResult } from './builder/build-image.js';
export type { BuildSpec, CopySpec, OptionNamer } from './builder/spec.js';
export { BasePlatformError, BuildError, MaxSizeError, NoSuchStageError, NothingToBuildError, OptionError, PlatformMismatchError, RunCheckError, SpecError, UnknownPlatformError } from './builder/errors.js';

// Images and their building blocks.
export { append, empty, layerFromBlob } from './oci/mutate.js';
export type { Addendum, AppendOptions, ConfigPatch } from './oci/mutate.js';
export { writeLayer } from './oci/layer.js';
export type { LayerBlob, LayerEntry, WriteLayerOptions } from './oci/layer.js';
export type { Descriptor, HistoryEntry, Image, ImageConfig, ImageLayer, Manifest, RunConfig } from './oci/image.js';
export { formatPlatform, parsePlatform, PlatformError, platformMatches } from './oci/platform.js';
export { assembleIndex, IndexError, isImageIndex, selectPlatform } from './oci/index.js';
export type { Artifact, ImageIndex, IndexDoc } from './oci/index.js';
export type { Platform } from './oci/platform.js';
export { MT, mediaTypesFor } from './oci/mediatypes.js';
export type { ImageFormat } from './oci/mediatypes.js';

// Where images are read from and written to.
export { LocalImageRef, parseImageRef, RegistryImageRef } from './refs/image-ref.js';
export type { AttachedArtifact, ImageRef, ReadOptions, ReferrersOptions, RegistryAccess, WriteOptions, WriteResult } from './refs/image-ref.js';
export type { Referrer } from './oci/artifact.js';
export { anonymous, defaultKeychain, multiKeychain, staticKeychain } from './registry/keychain.js';
export type { Keychain } from './registry/keychain.js';
export type { Credential } from './registry/credentials.js';
export { ClientPool } from './registry/pool.js';
export { CredentialsRefusedError, NetworkError, RegistryError, TooLargeError } from './registry/errors.js';
export type { NetworkFailure } from './registry/errors.js';
export { parseReference, ReferenceError } from './registry/reference.js';
export type { Reference } from './registry/reference.js';

// What is in an image: SBOMs (SPDX 2.3, CycloneDX 1.6) of a build or of any image, attached as OCI 1.1 referrers.
export { buildSbom } from './builder/sbom.js';
export type { BuildSbom } from './builder/sbom.js';
export { readSbom } from './refs/image-sbom.js';
export type { ImageSbom, ReadSbomOptions } from './refs/image-sbom.js';
export { sbomFromImage, sbomName } from './packages/image-sbom.js';
export { SBOM_FORMATS, SBOM_MEDIA_TYPE } from './packages/sbom-documents.js';
export type { SbomFormat } from './packages/sbom-documents.js';
export { imagePackages } from './packages/image-packages.js';
export type { ImagePackage } from './packages/image-packages.js';

// The library closure of ELF programs, computed statically.
// Notes, warnings and progress: pass a Log to build(), writeLayer() and image references (default: silent).
export { silentLog } from './log.js';
export type { Log, Task } from './log.js';

export { Resolver } from './elf/resolve.js';
export { ElfError } from './elf/errors.js';

/**
 * A BuildSpec with the defaults of `ocislim build`: scratch, the host's root, three layers, OCI media types, every
 * timestamp from SOURCE_DATE_EPOCH (else 0). Give at least `inputs` (programs, files, directories), `adds` or `copies`.
 */
export function buildSpec(s: Partial<BuildSpec>): BuildSpec {
  return {
    inputs: [],
    adds: [],
    copies: [],
    root: '/',
    env: [],
    expose: [],
    labels: {},
    annotations: {},
    volumes: [],
    layers: 3,
    format: 'oci',
    epoch: sourceDateEpoch(),
    ...s,
  };
}
