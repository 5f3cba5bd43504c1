/**
 * An image, layout, archive, blob or layer is not what it must be. `where` names it (a path, a reference, a blob
 * digest), `reason` says what is wrong; the message is the two joined, on one line.
 */
export class ImageError extends Error {
  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super(`${where}: ${reason}`);
    this.name = 'ImageError';
  }
}

/** A blob's bytes do not match its descriptor (size or digest): corrupt or tampered. */
export class BlobMismatchError extends ImageError {
  constructor(
    where: string,
    readonly digest: string,
    reason: string,
  ) {
    super(where, reason);
    this.name = 'BlobMismatchError';
  }
}

/** A local image reference (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]) is malformed. */
export class LocationError extends Error {
  constructor(
    readonly ref: string,
    readonly reason: string,
  ) {
    super(`"${ref}"${reason.startsWith('is ') ? ' ' : ': '}${reason}`);
    this.name = 'LocationError';
  }
}
