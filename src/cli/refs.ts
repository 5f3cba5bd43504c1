import { defaultCacheDir } from '../oci/cache.js';
import { parseLocalRef } from '../oci/location.js';
import type { Artifact } from '../oci/index.js';
import { ImageRef, LocalImageRef, parseImageRef, RegistryAccess, RegistryImageRef, WriteResult } from '../refs/image-ref.js';
import { checkTag } from '../registry/reference.js';
import { UsageError, UserError } from './errors.js';
import type { Log } from '../log.js';
import type { Pushed } from './result.js';

/** Any image reference (a local form, REF or docker://REF); `what` names the flag or argument it came from. */
export function imageRefArg(s: string, what: string): LocalImageRef | RegistryImageRef {
  try {
    return parseImageRef(s);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

/** A local reference (oci:, oci-archive:, docker-archive:) for `what`. */
export function localRefArg(s: string, what: string): LocalImageRef {
  try {
    return new LocalImageRef(parseLocalRef(s));
  } catch (e) {
    throw new UsageError(`${what} ${(e as Error).message}`);
  }
}

/**
 * A push target, with the extra --tag tags for its repository, checked in full: called before a build, so a bad
 * reference fails before anything is written.
 */
export function pushTargetArg(s: string, what: string, tags: string[] = []): LocalImageRef | RegistryImageRef {
  for (const t of tags) {
    try {
      checkTag(t);
    } catch {
      throw new UsageError(`--tag ${t}: not a valid tag`);
    }
  }
  const ref = imageRefArg(s, what);
  if (ref instanceof RegistryImageRef && ref.reference.digest) throw new UsageError(`${what} ${s}: push to a tag, not a digest`);
  return ref;
}

/** Writes to one push target (a registry, or any other reference): its REF@DIGEST line for stdout and the tags it got. */
export async function pushTo(img: Artifact, target: ImageRef, tags: string[], access: RegistryAccess & { log: Log }): Promise<Pushed> {
  // The cache directory keeps what pushes learn: where blobs already are (mounts), unfinished large uploads.
  const w = await target.write(img, { ...access, tags, pushState: defaultCacheDir() });
  if (w.stats) access.log.info(`pushed ${target}: ${w.stats.uploaded} uploaded, ${w.stats.mounted} mounted, ${w.stats.existing} already there`);
  else access.log.info(`wrote ${w.ref}`);
  const own = target instanceof RegistryImageRef ? target.reference.tag : target instanceof LocalImageRef ? target.location.tag : undefined;
  return { ref: w.ref, tags: [...new Set([...(own ? [own] : []), ...(target instanceof RegistryImageRef ? tags : [])])] };
}

/** Writes to a local reference; a file system failure becomes one line naming the reference. */
export async function writeOrSay(ref: LocalImageRef, img: Artifact, mtime?: number): Promise<WriteResult> {
  try {
    return await ref.write(img, { mtime });
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code) throw new UserError(`cannot write ${ref}: ${fsMessage(e)}`);
    throw e;
  }
}

/** A file system error in one line: what failed, on which path. */
export function fsMessage(e: unknown): string {
  const x = e as NodeJS.ErrnoException;
  if (x?.code === 'EACCES' || x?.code === 'EPERM') return `permission denied (${x.path ?? ''})`;
  if (x?.code === 'ENOENT') return `no such directory (${x.path ?? ''})`;
  if (x?.code === 'ENOTDIR' || (x?.code === 'EEXIST' && x.syscall === 'mkdir')) return `a path component is not a directory (${x.path ?? ''})`;
  if (x?.code === 'EROFS') return 'read-only file system';
  if (x?.code === 'ENOSPC') return 'no space left on device';
  return x?.message ?? String(e);
}
