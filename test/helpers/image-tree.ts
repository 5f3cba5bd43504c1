import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** One path of an unpacked image: what a comparison of two images looks at (no mtimes). */
export interface TreeEntry {
  type: string;
  mode: string;
  owner: string;
  link?: string;
  sha256?: string;
}

/** Minimal tar reader (ustar + pax path/linkpath; GNU long names). */
function* tarEntries(buf: Buffer): Generator<{ name: string; type: string; mode: number; uid: number; gid: number; linkname: string; data: Buffer }> {
  let off = 0;
  let paxName: string | null = null;
  let paxLink: string | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  const str = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');
  const num = (b: Buffer) => parseInt(str(b).trim() || '0', 8);
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = num(h.subarray(124, 136));
    const type = String.fromCharCode(h[156] || 48);
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      for (const rec of data.toString('utf8').split('\n')) {
        const m = /^\d+ ([^=]+)=(.*)$/s.exec(rec);
        if (m?.[1] === 'path') paxName = m[2];
        if (m?.[1] === 'linkpath') paxLink = m[2];
      }
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = str(data);
      continue;
    }
    if (type === 'K') {
      longLink = str(data);
      continue;
    }
    const prefix = str(h.subarray(345, 500));
    const name = paxName ?? longName ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    const linkname = paxLink ?? longLink ?? str(h.subarray(157, 257));
    paxName = paxLink = longName = longLink = null;
    yield { name, type, mode: num(h.subarray(100, 108)) & 0o7777, uid: num(h.subarray(108, 116)), gid: num(h.subarray(116, 124)), linkname, data };
  }
}

/** Applies layers (gzip or plain tar bytes) in order, whiteouts included, into path → entry. */
export function applyLayers(layers: Buffer[]): Map<string, TreeEntry> {
  const tree = new Map<string, TreeEntry>();
  const remove = (p: string, keepSelf: boolean) => {
    if (!keepSelf) tree.delete(p);
    for (const k of [...tree.keys()]) if (k.startsWith(p + '/')) tree.delete(k);
  };
  for (const raw of layers) {
    const tarBytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
    for (const e of tarEntries(tarBytes)) {
      const p = posix.normalize('/' + e.name).replace(/\/+$/, '');
      if (!p || p === '/') continue;
      const base = posix.basename(p);
      if (base === '.wh..wh..opq') {
        remove(posix.dirname(p), true);
        continue;
      }
      if (base.startsWith('.wh.')) {
        remove(posix.join(posix.dirname(p), base.slice(4)), false);
        continue;
      }
      const common = { mode: e.mode.toString(8).padStart(4, '0'), owner: `${e.uid}:${e.gid}` };
      if (e.type === '5') {
        tree.set(p, { type: 'dir', ...common });
        continue;
      }
      if (tree.get(p)?.type === 'dir') remove(p, false);
      if (e.type === '2') tree.set(p, { type: 'symlink', ...common, mode: '0777', link: e.linkname });
      else if (e.type === '1') {
        const t = tree.get(posix.normalize('/' + e.linkname));
        tree.set(p, { type: 'file', ...common, sha256: t?.sha256 });
      } else if (e.type === '0' || e.type === '7') tree.set(p, { type: 'file', ...common, sha256: createHash('sha256').update(e.data).digest('hex') });
      else tree.set(p, { type: `special-${e.type}`, ...common });
    }
  }
  return tree;
}

export interface ImageView {
  config: Record<string, unknown>;
  tree: Map<string, TreeEntry>;
}

/** An OCI layout (oci:DIR, tag "latest" or the only image) or a containers/image `dir:` directory. */
export function readImageDir(dir: string): ImageView {
  const blob = (d: string) => {
    const hex = d.replace(/^sha256:/, '');
    try {
      return readFileSync(join(dir, 'blobs/sha256', hex));
    } catch {
      return readFileSync(join(dir, hex));
    }
  };
  let manifest: { config: { digest: string }; layers: { digest: string }[] };
  try {
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    manifest = JSON.parse(blob(index.manifests[0].digest).toString('utf8'));
  } catch {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  }
  const config = JSON.parse(blob(manifest.config.digest).toString('utf8'));
  return { config, tree: applyLayers(manifest.layers.map((l) => blob(l.digest))) };
}
