import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importsMatch, T } from '../../src/builder/rules/symbols.js';

describe('importsMatch', () => {
  it('answers per import list and pattern, the same when asked again', () => {
    const a = ['malloc', 'getaddrinfo'];
    const b = ['malloc', 'tzset'];
    for (let i = 0; i < 2; i++) {
      assert.equal(importsMatch(a, T.hosts), true);
      assert.equal(importsMatch(b, T.hosts), false);
      assert.equal(importsMatch(a, T.tz), false);
      assert.equal(importsMatch(b, T.tz), true);
      assert.equal(importsMatch(undefined, T.tz), false);
    }
    // A list with the same names is another list: its own answers.
    assert.equal(importsMatch(['tzset'], T.tz), true);
  });
  it('asks a stateful (global) pattern afresh each time', () => {
    const re = /^malloc$/g;
    const list = ['malloc'];
    assert.equal(importsMatch(list, re), true); // lastIndex moves on
    assert.equal(importsMatch(list, re), false); // as RegExp.test itself answers: not remembered
    assert.equal(importsMatch(list, re), true);
  });
});
