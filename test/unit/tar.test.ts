import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { encodeHeader, END_OF_ARCHIVE, padding, TarHeader } from '../../src/oci/tar.js';

interface Member extends TarHeader {
  data?: Buffer;
}

const LONG = 'usr/share/' + 'a-very-long-directory-name/'.repeat(5) + 'f'.repeat(120);
const MEMBERS: Member[] = [
  { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 },
  { path: 'etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 6, mtime: 1700000000, data: Buffer.from('hello\n') },
  { path: 'etc/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'motd' },
  { path: 'etc/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'etc/motd' },
  { path: 'bin/ping', type: 'file', mode: 0o4755, uid: 65532, gid: 65532, size: 1, mtime: 0, data: Buffer.from('x'), xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]) } },
  { path: LONG, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0, data: Buffer.alloc(0) },
  { path: 'srv/caf\u00e9/\u00fcber', type: 'file', mode: 0o644, uid: 3000000, gid: 0, size: 513, mtime: 0, data: Buffer.alloc(513, 7) },
  { path: 'opt/target', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '../' + 'x/'.repeat(60) + 'y' },
];

function archive(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(encodeHeader(m));
    if (m.data) parts.push(m.data, padding(m.data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** Python's tarfile module reads the archive and describes every member (independent of our reader). */
function pythonList(tar: Buffer): Record<string, unknown>[] {
  const script = `
import sys, json, tarfile, io, base64
t = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode='r:')
out = []
for m in t.getmembers():
    d = dict(name=m.name, type=m.type.decode(), mode=m.mode, uid=m.uid, gid=m.gid, size=m.size, mtime=m.mtime, linkname=m.linkname, uname=m.uname, gname=m.gname)
    d['xattrs'] = {k[len('SCHILY.xattr.'):]: base64.b64encode(v.encode('utf-8', 'surrogateescape')).decode() for k, v in m.pax_headers.items() if k.startswith('SCHILY.xattr.')}
    if m.isfile():
        d['data'] = base64.b64encode(t.extractfile(m).read()).decode()
    out.append(d)
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', script], { input: tar, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('oci/tar.ts: deterministic tar bytes', () => {
  it('matches the golden output byte for byte', () => {
    // Golden: the sha256 of these members' archive as first written; any change to the header encoding changes
    // every layer digest, so it must be deliberate.
    const digest = createHash('sha256').update(archive(MEMBERS)).digest('hex');
    assert.equal(digest, GOLDEN);
  });

  it("reads back in Python's tarfile with every field: names (long, non-ASCII), types, modes, ids, times, links, xattrs, data", () => {
    const got = pythonList(archive(MEMBERS));
    const typeOf = { file: '0', hardlink: '1', symlink: '2', 'char-device': '3', 'block-device': '4', dir: '5', fifo: '6' } as const;
    assert.deepEqual(
      got,
      MEMBERS.map((m) => ({
        name: m.path,
        type: typeOf[m.type],
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        size: m.type === 'file' ? m.size : 0,
        mtime: m.mtime,
        linkname: m.linkname ?? '',
        uname: '',
        gname: '',
        xattrs: Object.fromEntries(Object.entries(m.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        ...(m.type === 'file' ? { data: (m.data ?? Buffer.alloc(0)).toString('base64') } : {}),
      })),
    );
  });

  it('device and fifo entries (of base images) have their tar type flags', () => {
    const got = pythonList(archive([
      { path: 'dev/null', type: 'char-device', mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 0 },
      { path: 'dev/sda', type: 'block-device', mode: 0o660, uid: 0, gid: 6, size: 0, mtime: 0 },
      { path: 'run/fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 },
    ]));
    assert.deepEqual(got.map((m) => [m.name, m.type]), [['dev/null', '3'], ['dev/sda', '4'], ['run/fifo', '6']]);
  });

  it('needs no PAX header for plain entries, and pads to 512-byte blocks', () => {
    assert.equal(encodeHeader(MEMBERS[1]).length, 512);
    assert.ok(encodeHeader(MEMBERS[5]).length > 512, 'a last component over 100 characters cannot be split for ustar: a PAX path');
    assert.equal(padding(0).length, 0);
    assert.equal(padding(1).length, 511);
    assert.equal(padding(512).length, 0);
  });
});

const GOLDEN = 'b3ee8ae936d880d9d3b60bd80b4ae65a1efcf55057dda5081e296e2d9d2ffa4c';
