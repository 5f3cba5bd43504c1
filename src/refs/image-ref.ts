import type { Image } from '../oci/image.js';
import type { Artifact } from '../oci/index.js';
import { addArtifactToLayout, ArtifactDescriptor, layoutReferrers, readLayoutBlob, Referrer } from '../oci/artifact.js';
import { LocationError } from '../oci/errors.js';
import { DirStore, TarStore } from '../oci/store.js';
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
  /**
   * Attaches an OCI 1.1 artifact (an SBOM: see buildSbom) to its subject, which must already be there: listed in an
   * OCI layout's index.json; on a registry through its referrers API, else the `sha256-<hex>` referrers tag.
   * Archives cannot take one (LocationError).
   */
  attach(artifact: Referrer, opts?: RegistryAccess): Promise<void>;
  /** The artifacts attached to `subject` (a manifest digest), of `artifactTypes` when given; none for archives of Docker's format. */
  referrers(subject: string, opts?: ReferrersOptions): Promise<AttachedArtifact[]>;
}

export interface ReferrersOptions extends RegistryAccess {
  /** Only artifacts of these types (e.g. the SBOM media types). */
  artifactTypes?: string[];
}

/** An artifact attached to an image: its manifest's descriptor and a reader of its (first) blob, digest-checked. */
export interface AttachedArtifact {
  descriptor: ArtifactDescriptor;
  /** The bytes of the artifact's document (its first layer); null when the manifest has no layer. */
  read(): Promise<Buffer | null>;
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
  async attach(artifact: Referrer): Promise<void> {
    if (this.location.kind !== 'oci') throw new LocationError(this.toString(), `${this.location.kind === 'oci-archive' ? 'an' : 'a'} ${this.location.kind} cannot hold attached artifacts; write to an oci: layout or a registry`);
    addArtifactToLayout(this.location.path, artifact);
  }
  async referrers(subject: string, opts: ReferrersOptions = {}): Promise<AttachedArtifact[]> {
    if (this.location.kind === 'docker-archive') return [];
    const store = this.location.kind === 'oci' ? new DirStore(this.location.path) : new TarStore(this.location.path);
    const types = opts.artifactTypes && new Set(opts.artifactTypes);
    return layoutReferrers(store, subject)
      .filter((r) => !types || types.has(r.descriptor.artifactType ?? ''))
      .map((r) => ({ descriptor: r.descriptor, read: async () => (r.manifest.layers?.[0] ? readLayoutBlob(store, r.manifest.layers[0]) : null) }));
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
  async attach(artifact: Referrer, opts: RegistryAccess = {}): Promise<void> {
    return (await import('./registry.js')).attachInRegistry(this.reference, artifact, opts);
  }
  async referrers(subject: string, opts: ReferrersOptions = {}): Promise<AttachedArtifact[]> {
    return (await import('./registry.js')).referrersInRegistry(this.reference, subject, opts);
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
