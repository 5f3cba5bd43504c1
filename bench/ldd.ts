// ocislim ldd over the whole /usr/bin corpus in one process, against ldd run per file and Debian's lddtree.
// Run: npm run build && node dist/bench/ldd.js
import { Resolver } from '../src/elf/resolve.js';
import { ElfError } from '../src/elf/errors.js';
import { elfFilesIn, has, runQuiet, table, time } from './util.js';

const files = [...elfFilesIn('/usr/bin'), ...elfFilesIn('/usr/sbin')];
console.log(`corpus: ${files.length} ELF files in /usr/bin and /usr/sbin`);

const ours = time(() => {
  const r = new Resolver('/', { hwcaps: 'host' });
  let libs = 0;
  for (const f of files) {
    try {
      libs += r.resolve(f).libraries.length;
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
    }
  }
  return libs;
});
const rows = [{ name: 'ocislim resolver, in process', ms: ours.ms }];
const cli = time(() => runQuiet(process.execPath, [new URL('../../bin/ocislim.js', import.meta.url).pathname, 'ldd', ...files]));
rows.push({ name: '`ocislim ldd FILE...` CLI, Node start-up included', ms: cli.ms });

const ldd = time(() => {
  for (const f of files) runQuiet('ldd', [f]);
});
rows.push({ name: 'ldd, once per file', ms: ldd.ms });

if (has('lddtree') && process.argv.includes('--lddtree')) {
  const one = time(() => runQuiet('/usr/bin/python3', ['/usr/bin/lddtree', '-l', ...files]));
  rows.push({ name: 'lddtree -l, all files in one process', ms: one.ms });
} else {
  console.log('lddtree skipped (give --lddtree; needs pax-utils and python3-pyelftools)');
}
console.log(table(`Static library closure of ${files.length} files (${ours.value} library edges)`, rows));
