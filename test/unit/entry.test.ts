import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Entry } from '../../src/oci/entry.js';
import { listLayer } from '../../src/oci/files.js';
import { layerFromBlob } from '../../src/oci/mutate.js';
import { LayerEntry, writeLayer } from '../../src/oci/layer.js';
import { MT } from '../../src/oci/mediatypes.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-entry-');
});
after(() => removeDir(dir));

describe('one entry shape: what a layer is written from is what its listing gives back', () => {
  it('dir, file, symlink, hard link, setuid and owners survive writeLayer -> listLayer', async () => {
    const entries: LayerEntry[] = [
      { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
      { path: '/etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('hi\n') },
      { path: '/etc/motd.link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: 'motd' },
      { path: '/etc/motd.hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, linkname: '/etc/motd' },
      { path: '/usr/bin/tool', type: 'file', mode: 0o4755, uid: 65532, gid: 65532, content: Buffer.from('x') },
    ];
    const blob = await writeLayer(entries, { dir, mediaType: MT.ociLayerGzip, mtime: 0, comment: 'entries' });
    const listed = await listLayer(layerFromBlob(blob));
    const expected: Entry[] = [
      { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
      { path: '/etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3 },
      { path: '/etc/motd.hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, size: 0, linkname: '/etc/motd' },
      { path: '/etc/motd.link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: 'motd' },
      { path: '/usr', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
      { path: '/usr/bin', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
      { path: '/usr/bin/tool', type: 'file', mode: 0o4755, uid: 65532, gid: 65532, size: 1 },
    ];
    assert.deepEqual(listed, expected);
  });
});
