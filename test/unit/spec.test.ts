import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime, parseCommand, parseCopy, parseKeyValue, parsePort, parseSignal, parseSize, parseUser, sourceDateEpoch, splitWords } from '../../src/builder/spec.js';

describe('builder/spec.ts parsers', () => {
  it('KEY=VALUE keeps later "=" in the value and refuses a missing key', () => {
    assert.deepEqual(parseKeyValue('A=b=c', 'env'), ['A', 'b=c']);
    assert.deepEqual(parseKeyValue('A=', 'env'), ['A', '']);
    assert.throws(() => parseKeyValue('=x', 'env'), /must be KEY=VALUE/);
    assert.throws(() => parseKeyValue('novalue', 'env'), /"novalue" must be KEY=VALUE/);
  });

  it('ports: default tcp, protocol lower-cased, range checked', () => {
    assert.equal(parsePort('6379'), '6379/tcp');
    assert.equal(parsePort('53/UDP'), '53/udp');
    assert.equal(parsePort('0080'), '80/tcp');
    for (const bad of ['0', '65536', 'http', '80/icmp', '']) assert.throws(() => parsePort(bad), /PORT/);
  });

  it('commands: a JSON array (exec form) or words with shell quoting and no expansion', () => {
    assert.deepEqual(parseCommand('["redis-server", "--port", "7000"]', 'cmd'), ['redis-server', '--port', '7000']);
    assert.deepEqual(parseCommand(`a 'b c' "d \\"e\\"" f\\ g $HOME`, 'cmd'), ['a', 'b c', 'd "e"', 'f g', '$HOME']);
    assert.deepEqual(splitWords("''", 'x'), ['']);
    assert.deepEqual(splitWords('   ', 'x'), []);
    assert.throws(() => parseCommand('[1, 2]', 'cmd'), /must be a JSON array of strings/);
    assert.throws(() => parseCommand('[oops', 'cmd'), /not a valid JSON array/);
    assert.throws(() => splitWords("it's", 'cmd'), /unterminated single quote/);
    assert.throws(() => splitWords('say "hi', 'cmd'), /unterminated double quote/);
  });

  it('SRC:DEST splits at the last colon and wants an absolute DEST', () => {
    assert.deepEqual(parseCopy('a:b:/dest', 'copy'), { src: 'a:b', dest: '/dest' });
    assert.throws(() => parseCopy('src:rel', 'copy'), /DEST must be an absolute path/);
    assert.throws(() => parseCopy('nocolon', 'copy'), /must be SRC:DEST/);
    assert.throws(() => parseCopy('src:', 'copy'), /must be SRC:DEST/);
  });

  it('signals, users, sizes, SOURCE_DATE_EPOCH', () => {
    assert.equal(parseSignal('SIGINT'), 'SIGINT');
    assert.equal(parseSignal('QUIT'), 'SIGQUIT');
    assert.equal(parseSignal('9'), '9');
    assert.throws(() => parseSignal('sigterm'), /signal name/);
    assert.equal(parseUser('nonroot:65532'), 'nonroot:65532');
    assert.throws(() => parseUser('a b'), /USER\[:GROUP\]/);
    assert.equal(parseSize('20M'), 20 * 1024 ** 2);
    assert.equal(parseSize('1.5G'), Math.round(1.5 * 1024 ** 3));
    assert.equal(parseSize('1000'), 1000);
    assert.equal(parseSize('2KiB'), 2048);
    assert.throws(() => parseSize('lots'), /size such as 20M/);
    assert.equal(sourceDateEpoch({}), 0);
    assert.equal(sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' }), 1700000000);
    assert.throws(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: '-1' }), /not a whole number/);
    assert.equal(isoTime(1700000000), '2023-11-14T22:13:20Z');
    assert.equal(isoTime(0), '1970-01-01T00:00:00Z');
  });
});
