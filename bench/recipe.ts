// The whole classic recipe for redis (closure, tar, image, push to a loopback registry): `ocislim build --push`
// vs the same steps with lddtree --copy-to-tree, umoci and skopeo. Run: npm run build && node dist/bench/recipe.js
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { table, time } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-recipe-'));
const sh = (s: string) => {
  const r = spawnSync('bash', ['-ec', s], { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${s}\n${r.stderr}`);
};

const reg = await startRegistry(join(work, 'registry'));
try {
  const runs = 3;
  const ours = time(() => {
    for (let i = 0; i < runs; i++) sh(`${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/ours:${i} >/dev/null 2>&1`);
  });
  const theirs = time(() => {
    for (let i = 0; i < runs; i++) {
      sh(`rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree /usr/bin/redis-server >/dev/null
          umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
          umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp
          skopeo copy --dest-tls-verify=false oci:u:latest docker://${reg.host}/theirs:${i} >/dev/null`);
    }
  });
  console.log(table(`The redis recipe end to end, image pushed to a loopback registry (mean of ${runs}; each run pushes a new tag, blobs already there after the first)`, [
    { name: 'ocislim build --push', ms: ours.ms / runs },
    { name: 'lddtree + umoci + skopeo copy', ms: theirs.ms / runs },
  ]));
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
