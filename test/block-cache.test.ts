import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-blocks-');
});
after(() => removeDir(dir));

function build(out: string, cache: string | null): { digest: string; stderr: string } {
  const args = ['build', 'app/redis-server:/usr/bin/redis-server', '--layers', '1', '--expose', '6379', '-o', `oci:${join(dir, out)}`];
  const r = ocislim(cache ? args : [...args, '--no-cache'], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000', ...(cache ? { OCISLIM_CACHE: join(dir, cache) } : {}) } });
  assert.equal(r.status, 0, r.stderr);
  return { digest: r.stdout.trim(), stderr: r.stderr };
}

/** "N of M blocks copied from the cache", from the layer's line. */
function copied(stderr: string): [number, number] | null {
  const m = /compressed \((\d+) of (\d+) blocks copied from the cache\)/.exec(stderr);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

describe('block cache (the CLI)', () => {
  it('only the program changed: the unchanged blocks are copied, and the image is the one an empty cache and --no-cache give', () => {
    mkdirSync(join(dir, 'app'));
    const app = join(dir, 'app', 'redis-server');
    copyFileSync('/usr/bin/redis-check-rdb', app);
    const first = build('first', 'cache');
    assert.equal(copied(first.stderr), null, first.stderr);

    appendFileSync(app, 'build 2');
    const warm = build('warm', 'cache');
    const c = copied(warm.stderr);
    // One layer of ~17 MB: every library's blocks are copied, the program's (~2.3 MB) and a run or two are deflated.
    assert.ok(c && c[0] >= 10 && c[1] - c[0] >= 3, warm.stderr);
    assert.notEqual(warm.digest, first.digest);
    assert.equal(build('empty', 'empty-cache').digest, warm.digest, 'an empty cache gives the same image');
    assert.equal(build('none', null).digest, warm.digest, '--no-cache gives the same image');

    // And it is the program as changed: GNU tar reads the layer back.
    const index = JSON.parse(readFileSync(join(dir, 'warm', 'index.json'), 'utf8'));
    const blob = (d: string) => join(dir, 'warm', 'blobs', 'sha256', d.slice(7));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    const x = join(dir, 'x');
    mkdirSync(x);
    const t = run('tar', ['-xzf', blob(manifest.layers[0].digest), '-C', x]);
    assert.equal(t.status, 0, t.stderr);
    assert.ok(readFileSync(join(x, 'usr/bin/redis-server')).equals(readFileSync(app)));
  });
});
