import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { cliLog } from '../../src/cli/log.js';

const MiB = 1 << 20;

function sink(columns = 120) {
  const s = { text: '', columns, write: (x: string) => ((s.text += x), true) };
  return s;
}

describe('the CLI log sink (src/cli/log.ts)', () => {
  it('in a log: a line at the start, every 10% of a big blob, and at the end with the rate', () => {
    mock.timers.enable({ apis: ['Date', 'setInterval'] });
    try {
      const s = sink();
      const log = cliLog(s as unknown as NodeJS.WriteStream, {});
      const t = log.task('upload 0123456789ab', 100 * MiB);
      for (let i = 0; i < 100; i++) {
        mock.timers.tick(10);
        t.add(MiB);
      }
      t.done('done');
      const lines = s.text.trimEnd().split('\n');
      assert.equal(lines[0], 'ocislim: upload 0123456789ab: 100.0 MiB');
      const steps = lines.filter((l) => /: \d+% of 100\.0 MiB, [\d.]+ MiB\/s, ETA [\d.]+ s$/.test(l));
      assert.equal(steps.length, 9, s.text);
      assert.match(lines.at(-1)!, /^ocislim: upload 0123456789ab: done, 100\.0 MiB in 1\.0 s \(100\.0 MiB\/s\)$/);
      assert.doesNotMatch(s.text, /\x1b/);
      // A small blob: its start and end only.
      const small = sink();
      const t2 = cliLog(small as unknown as NodeJS.WriteStream, {}).task('layer x', 4 * MiB);
      for (let i = 0; i < 4; i++) t2.add(MiB);
      t2.done('compressed');
      assert.equal(small.text.trimEnd().split('\n').length, 2, small.text);
    } finally {
      mock.timers.reset();
    }
  });

  it('in a log: a job that stalls still gets a line every 5 s', () => {
    mock.timers.enable({ apis: ['Date', 'setInterval'] });
    try {
      const s = sink();
      const t = cliLog(s as unknown as NodeJS.WriteStream, {}).task('upload aaaaaaaaaaaa', 1000);
      t.add(250);
      mock.timers.tick(4000);
      assert.equal(s.text.split('\n').filter(Boolean).length, 1);
      mock.timers.tick(1000);
      assert.match(s.text, /upload aaaaaaaaaaaa: 25% of 1000 B, 50 B\/s, ETA 15 s\n$/);
      mock.timers.tick(5000);
      assert.equal(s.text.split('\n').filter(Boolean).length, 3);
      t.done('stopped');
      assert.match(s.text, /upload aaaaaaaaaaaa: stopped, 250 B of 1000 B in 10 s \(25 B\/s\)\n$/);
      mock.timers.tick(20000);
      assert.equal(s.text.split('\n').filter(Boolean).length, 4, 'no line once done');
    } finally {
      mock.timers.reset();
    }
  });

  it('on a terminal: a bar per job with rate and ETA, redrawn in place; notes go above it', () => {
    mock.timers.enable({ apis: ['Date', 'setInterval'] });
    try {
      const s = sink(120);
      const log = cliLog(s as unknown as NodeJS.WriteStream, { tty: true });
      const t = log.task('layer the application (1 file)', 10 * MiB);
      mock.timers.tick(1000);
      t.add(4 * MiB);
      assert.match(s.text, /layer the application \(1 file\) \[#{5}-{7}\]  40% 4\.00 MiB \/ 10\.0 MiB, 4\.00 MiB\/s, ETA 1\.5 s\n$/);
      log.info('a note');
      assert.match(s.text, /\x1b\[1A\x1b\[0Jocislim: a note\n\x1b\[2Klayer the application/);
      t.add(6 * MiB);
      t.done('compressed');
      assert.match(s.text, /\x1b\[1A\x1b\[0Jocislim: layer the application \(1 file\): compressed, 10\.0 MiB in 1\.0 s \(10\.0 MiB\/s\)\n$/);
      // A narrow terminal: the label gives way, the numbers stay.
      const narrow = sink(60);
      cliLog(narrow as unknown as NodeJS.WriteStream, { tty: true }).task('layer the application (1 file)', 10 * MiB);
      assert.match(narrow.text, /^\x1b\[2Klayer the applic… \[-{12}\]   0% 0 B \/ 10\.0 MiB, 0 B\/s\n$/);
      for (const l of s.text.split('\n')) assert.ok(l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').length < 120, l);
    } finally {
      mock.timers.reset();
    }
  });

  it('--quiet: warnings only', () => {
    const s = sink();
    const log = cliLog(s as unknown as NodeJS.WriteStream, { quiet: true, tty: true });
    log.info('note');
    const t = log.task('upload x', 100);
    t.add(100);
    t.done('done');
    log.warn('careful');
    assert.equal(s.text, 'ocislim: warning: careful\n');
  });
});
