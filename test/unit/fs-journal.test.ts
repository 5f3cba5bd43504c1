import assert from 'node:assert/strict';
import fs, { lstatSync, chmodSync, closeSync, existsSync, mkdirSync, openSync, opendirSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprint, FsJournal, journaled, Observation, stillHolds } from '../../src/builder/fs-journal.js';
type Kind = Observation[0];

const OLD = new Date('2020-01-01T00:00:00Z');
let root: string;
/** The fixture the current test works on (each change gets its own: a change leaves a fresh ctime behind). */
let dir: string;
const FIXTURES = 9;

const dir0 = () => join(root, 'f0');

/** Trees whose files are older than the two racy seconds (ctime cannot be set back: wait it out once). */
before(async () => {
  root = fs.mkdtempSync(join(tmpdir(), 'ocislim-journal-'));
  for (let i = 0; i < FIXTURES; i++) {
    const d = join(root, `f${i}`);
    mkdirSync(join(d, 'lib'), { recursive: true });
    writeFileSync(join(d, 'lib', 'a.so'), 'AAAA');
    writeFileSync(join(d, 'conf'), 'x=1\n');
    writeFileSync(join(d, 'stream'), 'streamed');
    writeFileSync(join(d, 'other'), 'only listed');
    symlinkSync('a.so', join(d, 'lib', 'a.so.1'));
    mkdirSync(join(d, 'scratch'));
    for (const f of ['lib/a.so', 'conf', 'stream']) utimesSync(join(d, f), OLD, OLD);
  }
  // Times with fractions of a millisecond (and a ctime of now's, which has them too).
  mkdirSync(join(root, 'times', 'sub'), { recursive: true });
  writeFileSync(join(root, 'times', 'frac'), 'f');
  utimesSync(join(root, 'times', 'frac'), 1577836800.123456, 1577836800.987654);
  symlinkSync('frac', join(root, 'times', 'link'));
  utimesSync(join(root, 'times', 'sub'), 1577836800.5, 1577836800.000001);
  await new Promise((r) => setTimeout(r, 2100));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Everything a build does to learn about files, through the named (ES module) imports and the promise API. */
async function work(): Promise<string> {
  const st = statSync(join(dir, 'lib', 'a.so'));
  const names = readdirSync(join(dir, 'lib')).sort();
  const typed = readdirSync(dir, { withFileTypes: true }).map((e) => `${e.name}:${e.isDirectory()}`).sort();
  const target = readlinkSync(join(dir, 'lib', 'a.so.1'));
  const real = realpathSync(join(dir, 'lib', 'a.so.1'));
  const missing = existsSync(join(dir, 'lib', 'b.so'));
  const conf = readFileSync(join(dir, 'conf'), 'utf8');
  const fd = openSync(join(dir, 'lib', 'a.so'), 'r');
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, 0);
  closeSync(fd);
  let streamed = '';
  for await (const c of fs.createReadStream(join(dir, 'stream'))) streamed += c;
  const viaPromise = await readFile(join(dir, 'conf'), 'utf8');
  writeFileSync(join(dir, 'scratch', 'out'), 'own output');
  statSync(join(dir, 'scratch', 'out'));
  return JSON.stringify([st.size, names, typed, target, real, missing, conf, b.toString(), streamed, viaPromise]);
}

async function record(): Promise<{ obs: Observation[]; journal: FsJournal }> {
  const { journal } = await journaled([join(dir, 'scratch')], work);
  return { obs: journal.observations, journal };
}

describe('the file-system journal (src/builder/fs-journal.ts)', () => {
  it('records every question a piece of work asks, and only while it runs', async () => {
    dir = join(root, 'f0');
    const original = fs.statSync;
    const { obs, journal } = await record();
    assert.equal(fs.statSync, original, 'fs is restored afterwards');
    const has = (kind: string, p: string) => obs.some(([k, q]) => k === kind && q === join(dir, p));
    assert.ok(has('s', 'lib/a.so'), 'stat and open of a.so');
    assert.ok(has('n', 'lib'), 'readdir of names: the names are what the work learnt');
    assert.ok(obs.some(([k, q]) => k === 'd' && q === dir), 'readdir with file types: names and types');
    assert.ok(has('k', 'lib/a.so.1'), 'readlink');
    assert.ok(has('r', 'lib/a.so.1'), 'realpath');
    assert.ok(has('s', 'lib/b.so'), 'exists of a missing path');
    assert.ok(has('s', 'conf'), 'readFile');
    assert.ok(has('s', 'stream'), 'createReadStream');
    assert.ok(!obs.some(([, p]) => p.startsWith(join(dir, 'scratch'))), 'the excluded directory is not journaled');
    assert.equal(obs.find(([k, p]) => k === 's' && p === join(dir, 'lib', 'b.so'))![2], 'E:ENOENT');
    assert.equal(journal.racy, false);
    assert.equal(journal.unusable, null);
    assert.ok(stillHolds(obs));
  });

  for (const [i, [what, change]] of ([
    ['a file rewritten with the same size and mtime', () => (writeFileSync(join(dir, 'conf'), 'x=2\n'), utimesSync(join(dir, 'conf'), OLD, OLD))],
    ['a file appearing in a listed directory', () => writeFileSync(join(dir, 'lib', 'c.so'), '')],
    ['a path that was absent appearing', () => writeFileSync(join(dir, 'lib', 'b.so'), '')],
    ['a symbolic link pointing elsewhere', () => (unlinkSync(join(dir, 'lib', 'a.so.1')), symlinkSync('./a.so', join(dir, 'lib', 'a.so.1')))],
    ['a mode change', () => chmodSync(join(dir, 'stream'), 0o600)],
    // (only the listing with file types saw it: nothing else asked about it)
    ['a file replaced by a directory of the same name in a directory listed with file types', () => (unlinkSync(join(dir, 'other')), mkdirSync(join(dir, 'other')))],
  ] as [string, () => void][]).entries()) {
    it(`no longer holds after ${what}`, async () => {
      dir = join(root, `f${i + 1}`);
      const { obs, journal } = await record();
      assert.equal(journal.racy, false);
      assert.ok(stillHolds(obs));
      change();
      assert.equal(stillHolds(obs), false);
    });
  }

  it('a bigint stat of a directory is a stamp: an entry renamed into it or removed from it is seen, as a plain stat of it does not', async () => {
    for (const [i, change] of [
      (d: string) => (writeFileSync(join(d, 'lib', 'a.so.new'), 'BBBB'), renameSync(join(d, 'lib', 'a.so.new'), join(d, 'lib', 'a.so'))),
      (d: string) => unlinkSync(join(d, 'lib', 'a.so.1')),
    ].entries()) {
      dir = join(root, `f${7 + i}`);
      const lib = join(dir, 'lib');
      const { journal } = await journaled([], async () => [statSync(lib, { bigint: true }), await fs.promises.lstat(lib, { bigint: true }), statSync(join(lib, 'a.so'), { bigint: true }), statSync(dir)]);
      const obs = journal.observations;
      assert.ok(obs.some(([k, p, f]) => k === 't' && p === lib && f.startsWith('D:')), JSON.stringify(obs));
      assert.ok(obs.some(([k, p, f]) => k === 'm' && p === lib && f.startsWith('D:')), 'the promise form of lstat too');
      assert.ok(obs.some(([k, p]) => k === 's' && p === join(lib, 'a.so')), "a file's bigint stat is a plain stat (its times are in it)");
      assert.equal(journal.racy, false);
      assert.ok(stillHolds(obs));
      // Only the plain stat of `dir` saw it: no change of its entries moves that.
      writeFileSync(join(dir, 'new'), '');
      assert.ok(stillHolds(obs));
      change(dir);
      assert.equal(stillHolds(obs), false);
      assert.equal((await journaled([], async () => statSync(lib, { bigint: true }))).journal.racy, true, 'a directory changed in the last two seconds is racy as a stamp');
      assert.equal((await journaled([], async () => statSync(lib))).journal.racy, false, 'and not as a plain stat');
    }
  });

  it("the work's own bigint stat and readlink are recorded as the replay will print them (times in fractions of a millisecond too)", async () => {
    const t = join(root, 'times');
    const asked: [Kind, string][] = [['s', join(t, 'frac')], ['l', join(t, 'link')], ['s', join(t, 'link')], ['t', join(t, 'sub')], ['m', t], ['t', join(t, 'absent')]];
    const { journal } = await journaled([], async () => {
      for (const [k, p] of asked) (k === 'l' || k === 'm' ? lstatSync : statSync)(p, { bigint: true, throwIfNoEntry: false });
      readlinkSync(join(t, 'link'));
      assert.throws(() => readlinkSync(join(t, 'frac'), 'utf8'));
    });
    asked.push(['k', join(t, 'link')], ['k', join(t, 'frac')]);
    assert.equal(journal.racy, false);
    const obs = journal.observations;
    for (const [k, p] of asked) {
      const o = obs.find(([ok, op]) => op === p && (ok === k || (k === 't' && ok === 's') || (k === 'm' && ok === 'l')));
      assert.ok(o, `${k} ${p}: ${JSON.stringify(obs)}`);
      assert.equal(o[2], fingerprint(o[0], p), `${k} ${p}`);
    }
    assert.ok(obs.some(([k, p, f]) => k === 't' && p === join(t, 'sub') && f.startsWith('D:')), 'a directory is a stamp');
    assert.ok(stillHolds(obs));
    utimesSync(join(t, 'frac'), 1577836800.123456, 1577836800.987655);
    assert.equal(stillHolds(obs), false, 'a microsecond later is another time');
  });

  it('kernel files are fingerprinted by their content, not their made-up stat; a device read is not modelled', async () => {
    const { journal } = await journaled([], async () => (statSync('/proc/version'), readFileSync('/proc/version')));
    const obs = journal.observations;
    assert.ok(obs.some(([k, p, f]) => k === 'c' && p === '/proc/version' && !f.startsWith('E:')), JSON.stringify(obs));
    assert.ok(obs.some(([k, p, f]) => k === 's' && p === '/proc/version' && f.startsWith('v:')), JSON.stringify(obs));
    // Once each, and only the work's reads: the journal's own read of the content (through the hooked fs.openSync,
    // inside readFileSync) is not noted.
    assert.deepEqual(obs.filter(([, p]) => p === '/proc/version').map(([k]) => k), ['s', 'c'], JSON.stringify(obs).slice(0, 300));
    assert.ok(stillHolds(obs));
    const dev = await journaled([], async () => readFileSync('/dev/null'));
    assert.match(dev.journal.unusable ?? '', /\/dev\/null/);
  });

  it('a file changed in the last two seconds makes the journal racy; an unmodelled reader makes it unusable', async () => {
    writeFileSync(join(root, 'fresh'), 'new');
    const racy = await journaled([], async () => readFileSync(join(root, 'fresh')));
    assert.equal(racy.journal.racy, true);
    // The work's own stat answers (stat, lstat, an open file's fstat) are checked too; an old file or a directory is not racy.
    for (const look of [() => statSync(join(root, 'fresh')), () => fs.lstatSync(join(root, 'fresh')), () => closeSync(openSync(join(root, 'fresh'), 'r'))]) {
      assert.equal((await journaled([], async () => look())).journal.racy, true);
    }
    writeFileSync(join(root, 'fresh-ms'), 'new');
    utimesSync(join(root, 'fresh-ms'), OLD, OLD); // an old mtime, a fresh ctime
    assert.equal((await journaled([], async () => statSync(join(root, 'fresh-ms')))).journal.racy, true);
    assert.equal((await journaled([], async () => [statSync(join(dir0(), 'conf')), statSync(dir0()), fs.lstatSync(join(dir0(), 'lib', 'a.so.1'))])).journal.racy, false);
    const odd = await journaled([], async () => opendirSync(root).closeSync());
    assert.match(odd.journal.unusable ?? '', /opendir/);
  });
});
