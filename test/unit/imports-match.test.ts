import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importsMatch, literalNames, T } from '../../src/builder/rules/symbols.js';

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
  it("answers a pattern of literal names from its names, as the pattern itself would", () => {
    assert.deepEqual([...literalNames(T.hosts)!].sort(), ['getaddrinfo', 'gethostbyaddr', 'gethostbyaddr_r', 'gethostbyname', 'gethostbyname2', 'gethostbyname2_r', 'gethostbyname_r', 'getnameinfo']);
    assert.deepEqual([...literalNames(/^a(b|c?)d?$/)!].sort(), ['a', 'ab', 'abd', 'ac', 'acd', 'ad']);
    // Anything else is tested as a pattern.
    for (const re of [/^(?:tzset)$/, /^tz.*$/, /tzset/, /^tzset$/i, /^[a-z]+$/, /^a\d$/, /^a|b$/, /^(a)|b$/, /^a??$/, /^a*$/, /^a$|^b$/]) assert.equal(literalNames(re), null, re.source);
    // Every pattern of T, against names around its own: the same answers as RegExp.test gives.
    const names = Object.values(T).flatMap((re) => [...literalNames(re)!]);
    const near = names.flatMap((n) => [n, n + '_r', n.slice(0, -1), 'x' + n, n.toUpperCase()]);
    for (const re of Object.values(T)) {
      for (const n of near) assert.equal(importsMatch([n], re), re.test(n), `${re.source} ${n}`);
      assert.equal(importsMatch(['malloc', 'free'], re), false);
    }
  });
});
