import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namedWords } from '../../src/builder/rules/strings.js';

describe('names a program holds (the helpers rule)', () => {
  it('a whole string, the end of a path or a separated word, and the plain end of a longer string are told apart', () => {
    const strings = ['xz-utils', 'txz', 'S.gpg-agent', 'S.dirmngr', 'invalid', 'tar', 'a'];
    const got = namedWords(strings, new Set(['xz', 'gpg-agent', 'dirmngr', 'id', 'tar', 'a', 'gzip']));
    assert.deepEqual(Object.fromEntries([...got].sort()), { dirmngr: 'part', 'gpg-agent': 'part', id: 'tail', tar: 'whole', xz: 'tail' });
  });

  it('an absolute path names a program only in a PATH directory: /usr/bin/xz does, /etc/passwd does not', () => {
    const got = namedWords(['/usr/bin/xz', '/etc/passwd', '/agent/gpg-agent'], new Set(['xz', 'passwd', 'gpg-agent']), new Set(['/usr/bin', '/bin']));
    assert.deepEqual(Object.fromEntries(got), { xz: 'whole' });
  });

  it('the strongest naming wins when a word shows several ways', () => {
    assert.equal(namedWords(['txz', 'xz'], new Set(['xz'])).get('xz'), 'whole');
    assert.equal(namedWords(['txz', '--xz'], new Set(['xz'])).get('xz'), 'part');
  });
});
