import { Readable } from 'node:stream';
import { Referrer, ArtifactDescriptor, referrerDescriptor, referrersTag } from '../oci/artifact.js';
import { MT } from '../oci/mediatypes.js';
import { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';

export interface AttachResult {
  /** The artifact manifest's digest. */
  digest: string;
  /** The referrers tag updated (registries without the referrers API), or null when the registry indexes it itself. */
  fallbackTag: string | null;
}

/**
 * Pushes an artifact whose subject is an image manifest already in `repo`: its blobs, then the manifest by digest.
 * A registry with the referrers API answers with OCI-Subject and lists it itself; otherwise (distribution 2.8) the
 * referrers tag `sha256-<hex>` is updated as the spec says: its index is read (missing: start empty; not an index:
 * an error), the artifact appended unless it is there, every other entry kept, and the index put back.
 */
export async function attachArtifact(client: RegistryClient, repo: string, a: Referrer, log: (s: string) => void = () => {}): Promise<AttachResult> {
  for (const b of a.blobs) {
    if ((await client.blobSize(repo, b.descriptor.digest, true)) !== null) continue;
    await client.uploadBlob(repo, b.descriptor, () => Readable.from([b.bytes]));
  }
  const put = await client.putManifestWithSubject(repo, a.digest, a.manifestBytes, MT.ociManifest);
  if (put.ociSubject === a.subject.digest) {
    log(`attached ${a.artifactType} ${a.digest} to ${repo}@${a.subject.digest} (referrers API)`);
    return { digest: a.digest, fallbackTag: null };
  }
  const tag = referrersTag(a.subject.digest);
  const current = await readReferrersTag(client, repo, tag);
  const entry = referrerDescriptor(a);
  if (current.manifests.some((m) => m.digest === a.digest)) {
    log(`${repo}:${tag} already lists ${a.digest}`);
    return { digest: a.digest, fallbackTag: tag };
  }
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [...current.manifests, entry] };
  await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), MT.ociIndex);
  log(`attached ${a.artifactType} ${a.digest} to ${repo}@${a.subject.digest} (referrers tag ${tag})`);
  return { digest: a.digest, fallbackTag: tag };
}

/** The referrers tag's index: empty when the tag does not exist; an error when it holds something else. */
async function readReferrersTag(client: RegistryClient, repo: string, tag: string): Promise<{ manifests: ArtifactDescriptor[] }> {
  let got;
  try {
    got = await client.getManifest(repo, tag);
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404) return { manifests: [] };
    throw e;
  }
  if (got.mediaType !== MT.ociIndex) throw new RegistryError(`${client.registry}/${repo}:${tag} is a ${got.mediaType || 'manifest of unknown type'}, not the image index the referrers tag schema needs; not overwriting it`);
  const index = JSON.parse(got.bytes.toString('utf8')) as { manifests?: ArtifactDescriptor[] };
  return { manifests: Array.isArray(index.manifests) ? index.manifests : [] };
}

/** Referrers of a manifest: the referrers API, else the tag schema fallback; optionally of one artifactType. */
export async function listReferrers(client: RegistryClient, repo: string, subject: string, artifactType?: string): Promise<ArtifactDescriptor[]> {
  const api = await client.referrers(repo, subject, artifactType);
  if (api) return api.manifests;
  let index;
  try {
    index = await readReferrersTag(client, repo, referrersTag(subject));
  } catch (e) {
    // Not an index: the spec says assume no referrers.
    if (e instanceof RegistryError && !e.status) return [];
    throw e;
  }
  return index.manifests.filter((m) => !artifactType || m.artifactType === artifactType);
}
