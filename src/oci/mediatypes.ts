export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type ImageFormat = 'oci' | 'docker';

export function mediaTypesFor(format: ImageFormat) {
  return format === 'docker'
    ? { manifest: MT.dockerManifest, config: MT.dockerConfig, layer: MT.dockerLayerGzip, index: MT.dockerManifestList }
    : { manifest: MT.ociManifest, config: MT.ociConfig, layer: MT.ociLayerGzip, index: MT.ociIndex };
}

export function isIndexType(mt: string | undefined): boolean {
  return mt === MT.ociIndex || mt === MT.dockerManifestList;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MT.ociManifest || mt === MT.dockerManifest;
}

export function isLayerType(mt: string): boolean {
  return /^application\/vnd\.(oci\.image\.layer\.v1\.tar|docker\.image\.rootfs\.(diff|foreign\.diff)\.tar)/.test(mt);
}
