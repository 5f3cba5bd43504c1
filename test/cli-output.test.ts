import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './helpers/cli.js';
import { sh } from './helpers/sh.js';

/** ELF programs of /usr/bin, enough of them that ldd's output is several times a pipe's 64 KiB buffer. */
function programs(n: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/usr/bin').sort()) {
    const p = join('/usr/bin', name);
    try {
      if (!statSync(p).isFile()) continue;
      const head = readFileSync(p).subarray(0, 4);
      if (head.toString('latin1') === '\x7fELF') out.push(p);
    } catch {
      continue;
    }
    if (out.length === n) break;
  }
  return out;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('output through a pipe is complete however slowly the reader reads', () => {
  const files = programs(120);
  const cmd = (args: string[]) => [process.execPath, BIN, ...args].map(q).join(' ');

  it('ldd --json: the reader starts a second late and still gets the whole document', () => {
    const slow = sh(`set -o pipefail; ${cmd(['ldd', '--json', ...files])} | (sleep 1; cat); echo "status=$?"`);
    const status = slow.slice(slow.lastIndexOf('status='));
    const json = slow.slice(0, slow.lastIndexOf('status='));
    assert.ok(json.length > 4 * 65536, `${json.length} bytes: the test needs output well past a pipe buffer`);
    const doc = JSON.parse(json) as unknown[];
    assert.equal(doc.length, files.length);
    assert.match(status, /^status=[01]\n$/);
  });

  it('ldd --tree: a reader taking 2 KiB at a time, after a pause, gets every byte a fast reader gets', () => {
    const fast = sh(`${cmd(['ldd', '--tree', ...files])} | cat; true`);
    assert.ok(fast.length > 2 * 65536, `${fast.length} bytes`);
    const slow = sh(`${cmd(['ldd', '--tree', ...files])} | (sleep 1; dd bs=2048 status=none); true`);
    assert.equal(slow.length, fast.length);
    assert.equal(slow, fast);
  });

  it('a reader that goes away ends the command quietly (status 141 as with SIGPIPE, no stack trace)', () => {
    const errFile = `/tmp/ocislim-cli-output-${process.pid}`;
    const r = sh(`${cmd(['ldd', '--json', ...files])} 2>${errFile} | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"; cat ${errFile}; rm -f ${errFile}`);
    const [status, ...rest] = r.split('\n');
    assert.equal(status, '141');
    assert.doesNotMatch(rest.join('\n'), /EPIPE|at |node:/);
  });
});
