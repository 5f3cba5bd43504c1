import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { layerTar } from '../oci/files.js';
import { Image } from '../oci/image.js';
import { ControlFileError, scanStanzas } from './deb822.js';

export interface ImagePackage {
  name: string;
  version: string;
  arch: string;
  source: string;
  /** The record it came from: /var/lib/dpkg/status or /var/lib/dpkg/status.d/NAME. */
  from: string;
}

const RECORD = /^var\/lib\/dpkg\/(status|status\.d\/[^/]+)$/;

/**
 * The Debian packages an image declares: its /var/lib/dpkg/status and status.d/ records (the distroless
 * convention), read from the layers in order (a later layer's file replaces an earlier one's, whiteouts remove it)
 * without unpacking anything else. Packages whose Status says they are gone are left out.
 */
export async function imagePackages(img: Image, where?: string): Promise<ImagePackage[]> {
  const files = new Map<string, Buffer>();
  for (const layer of img.layers) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      const name = h.name.replace(/^\.?\/*/, '');
      const base = name.split('/').pop() ?? '';
      if (base.startsWith('.wh.')) {
        const dir = name.slice(0, name.length - base.length);
        for (const k of [...files.keys()]) if (base === '.wh..wh..opq' ? k.startsWith(dir) : k === dir + base.slice(4) || k.startsWith(dir + base.slice(4) + '/')) files.delete(k);
      }
      if (h.type === 'file' && RECORD.test(name) && !name.endsWith('.md5sums') && (h.size ?? 0) < 64 << 20) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          files.set(name, Buffer.concat(chunks));
          next();
        });
        return;
      }
      stream.on('end', next);
      stream.resume();
    });
    await pipeline(layerTar(layer), extract);
  }
  const out: ImagePackage[] = [];
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const s of scanStanzas(bytes.toString('utf8'), '/' + name, ['package', 'version', 'architecture', 'source', 'status'], where)) {
      const h = s.head;
      if (!h.package) throw new ControlFileError('/' + name, s.line, 'stanza without a Package field', where);
      const state = (h.status ?? 'install ok installed').split(/\s+/)[2];
      if (state === 'not-installed' || state === 'config-files') continue;
      out.push({ name: h.package, version: h.version ?? '', arch: h.architecture ?? '', source: (h.source ?? h.package).split(/\s/)[0], from: '/' + name });
    }
  }
  return out;
}
