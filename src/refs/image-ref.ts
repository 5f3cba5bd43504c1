import type { Image } from '../oci/image.js';
import type { Artifact } from '../oci/index.js';
import type { Platform } from '../oci/platform.js';
import type { PushStats } from '../registry/push.js';
import type { Log } from '../log.js';
import type { Keychain } from '../registry/keychain.js';
import type { ClientPool } from '../registry/pool.js';
import { formatLocalRef, isLocalRef, LocalKind, LocalRef, parseLocalRef, readLocalArtifact, readLocalImage, writeLocalImage } from '../oci/location.js';
import { formatReference, parseReference, Reference } from '../registry/reference.js';

/** How to reach registries; local references ignore it. */
export interface RegistryAccess {
  /** Where credentials come from (see registry/keychain.ts: defaultKeychain() reads docker's and podman's files). Anonymous without one. */
  keychain?: Keychain;
  /** Plain http to a registry that is not on loopback. */
  insecure?: boolean;
  /** PEM file of extra CA certificates for TLS registries. */
  caFile?: string;
  /** Each wait on the network in ms (connect, answer, between chunks); default 10 s. */
  timeoutMs?: number;
  /** Retries of a failed request without progress; default 4. */
  retries?: number;
  /** Of those, how many may follow a timeout; default 1. */
  timeoutRetries?: number;
  /**
   * Clients to share between operations (one connection pool and token per registry); the caller closes it. Without
   * one, each operation makes its own (a read's layers then stream through it until they are read).
   */
  pool?: ClientPool;
  /** Where notes, warnings and progress go (never a secret). */
  log?: Log;
}

export interface ReadOptions extends RegistryAccess {
  /** The image for this platform, when the reference names a multi-platform index. */
  platform?: Platform;
}

export interface WriteOptions extends RegistryAccess {
  /** Timestamp of archive members (seconds; SOURCE_DATE_EPOCH or 0). */
  mtime?: number;
  /** More tags in the same repository (registries only). */
  tags?: string[];
  /**
   * Registries only: a directory where pushes remember which repositories received which blobs (to mount them
   * into others) and the sessions of large uploads (resumed by a later push after an interruption). None by default.
   */
  pushState?: string;
}

export interface WriteResult {
  /** Where the image is now: `oci:DIR:TAG`, `oci-archive:FILE:TAG`, `docker-archive:FILE[:NAME:TAG]`, or `REGISTRY/REPO@DIGEST`. */
  ref: string;
  /** The digest of the manifest or index written (a registry that refused OCI gets Docker schema 2: that digest). */
  digest: string;
  /** For a registry: what was uploaded, mounted or already there. */
  stats?: PushStats;
}

/**
 * Where an image is read from or written to, whatever the kind (containers/image's ImageReference, ko's
 * publish.Interface): an OCI layout directory, an oci-archive or docker-archive file, or a registry.
 */
export interface ImageRef {
  readonly kind: LocalKind | 'registry';
  /** The reference in the syntax it was parsed from. */
  toString(): string;
  /** One image: the reference's, or the one for `opts.platform` from a multi-platform index. */
  read(opts?: ReadOptions): Promise<Image>;
  /** What the reference holds: one image, or a multi-platform index with every image it lists (unless `opts.platform`). */
  readArtifact(opts?: ReadOptions): Promise<Artifact>;
  /** Writes an image, or an index with its images (a docker-archive holds one image only). */
  write(image: Artifact, opts?: WriteOptions): Promise<WriteResult>;
}

/** `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]`. */
export class LocalImageRef implements ImageRef {
  readonly kind: LocalKind;
  constructor(readonly location: LocalRef) {
    this.kind = location.kind;
  }
  toString(): string {
    return formatLocalRef(this.location);
  }
  async read(opts: ReadOptions = {}): Promise<Image> {
    return readLocalImage(this.location, opts.platform);
  }
  async readArtifact(opts: ReadOptions = {}): Promise<Artifact> {
    return readLocalArtifact(this.location, opts.platform);
  }
  /** Written atomically. An untagged layout image is invisible to umoci and buildah, so oci: and oci-archive: default to the tag "latest". */
  async write(image: Artifact, opts: WriteOptions = {}): Promise<WriteResult> {
    const loc = this.location.kind !== 'docker-archive' && !this.location.tag ? { ...this.location, tag: 'latest' } : this.location;
    await writeLocalImage(image, loc, opts.mtime ?? 0);
    return { ref: formatLocalRef(loc), digest: image.digest };
  }
}

/** `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`, with Docker's normalisation (docker.io, library/). */
export class RegistryImageRef implements ImageRef {
  readonly kind = 'registry' as const;
  constructor(readonly reference: Reference) {}
  toString(): string {
    return formatReference(this.reference);
  }
  // The registry client (undici) loads only when a registry is used.
  async read(opts: ReadOptions = {}): Promise<Image> {
    return (await import('./registry.js')).readFromRegistry(this.reference, opts);
  }
  async readArtifact(opts: ReadOptions = {}): Promise<Artifact> {
    return (await import('./registry.js')).readArtifactFromRegistry(this.reference, opts);
  }
  async write(image: Artifact, opts: WriteOptions = {}): Promise<WriteResult> {
    return (await import('./registry.js')).writeToRegistry(this.reference, image, opts);
  }
}

/**
 * Parses any image reference: the transport prefixes oci:, oci-archive:, docker-archive: name local images; anything
 * else is a registry reference. Throws ReferenceError (registry) or LocationError (local) naming what is wrong.
 */
export function parseImageRef(s: string): LocalImageRef | RegistryImageRef {
  if (isLocalRef(s)) return new LocalImageRef(parseLocalRef(s));
  return new RegistryImageRef(parseReference(s));
}
