/**
 * The one shape of a file-system entry in a layer: layers are written from it (oci/layer.ts LayerEntry adds where the
 * bytes come from), tar headers encode it (oci/tar.ts TarHeader adds the time), layer listings return it
 * (oci/files.ts).
 */

/** What kind of file an entry is. ocislim builds the first four; layers of other images may hold the others. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo';

export interface Entry {
  /** Path in the image ("/usr/bin/redis-server"); in a tar header, the member name (no leading "/"). */
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Content size in bytes (files). */
  size?: number;
  /** Symlink text, or for a hard link the path it links to. */
  linkname?: string;
  /** Extended attributes (e.g. security.capability), values as raw bytes. */
  xattrs?: Record<string, Uint8Array>;
}

const FROM_TAR_STREAM: Record<string, EntryType> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

/** The entry type of a tar header type as tar-stream names it (null for headers that are not entries). */
export function entryTypeOf(tarStreamType: string | null | undefined): EntryType | null {
  return FROM_TAR_STREAM[tarStreamType ?? 'file'] ?? null;
}
