// Push of the redis image to a loopback docker-registry: `ocislim push` vs `skopeo copy` from the same OCI layout,
// first push and re-push of the unchanged image. Needs docker-registry and skopeo.
// Run: npm run build && node dist/bench/push.js
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { table, time } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-push-'));

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

const reg = await startRegistry(join(work, 'registry'));
try {
  const layout = join(work, 'redis');
  run(BIN, ['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`]);
  const ours = time(() => run(BIN, ['push', `oci:${layout}`, `${reg.host}/ocislim:1`]));
  const oursAgain = time(() => run(BIN, ['push', `oci:${layout}`, `${reg.host}/ocislim:1`]));
  const theirs = time(() => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${reg.host}/skopeo:1`]));
  const theirsAgain = time(() => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${reg.host}/skopeo:1`]));
  console.log(table('Push the redis image (7 MiB, 4 blobs) to a loopback registry', [
    { name: 'ocislim push', ms: ours.ms },
    { name: 'skopeo copy oci: docker://', ms: theirs.ms },
  ]));
  console.log();
  console.log(table('Re-push of the unchanged image', [
    { name: 'ocislim push', ms: oursAgain.ms },
    { name: 'skopeo copy oci: docker://', ms: theirsAgain.ms },
  ]));
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
