import { describe, expect, it } from 'vitest';
import type { BuildLogEntry } from '../../../src/builder/logs/entry.ts';
import { isAfter } from '../../../src/builder/logs/entry.ts';
import { LineSplitter } from '../../../src/builder/logs/line-splitter.ts';
import { SecretMasker } from '../../../src/builder/logs/secret-masker.ts';
import { cursorForFollow, formatSseEvent } from '../../../src/builder/logs/sse.ts';

describe('Server-Sent Events', () => {
  it('formats an entry with its cursor as id, its type as event and itself as one data line', () => {
    const entry: BuildLogEntry = {
      id: '1712345678901-3',
      type: 'line',
      stream: 'stderr',
      text: 'two\nlines',
      at: 1712345678900,
    };
    expect(formatSseEvent(entry)).toBe(
      'id: 1712345678901-3\nevent: line\ndata: {"id":"1712345678901-3","type":"line","stream":"stderr","text":"two\\nlines","at":1712345678900}\n\n',
    );
  });

  it('resumes from Last-Event-ID before the requested cursor, else from the start', () => {
    expect(cursorForFollow('5-1', '3-0')).toBe('5-1');
    expect(cursorForFollow(undefined, '3-0')).toBe('3-0');
    expect(cursorForFollow('', '3-0')).toBe('3-0');
    expect(cursorForFollow(['4-0', '6-2'])).toBe('6-2');
    expect(cursorForFollow(undefined)).toBe('0');
    expect(() => cursorForFollow('<script>')).toThrow(/invalid log cursor/);
  });
});

describe('cursors', () => {
  it('orders stream ids by time, then sequence, numerically', () => {
    expect(isAfter('10-0', '9-5')).toBe(true);
    expect(isAfter('10-2', '10-10')).toBe(false);
    expect(isAfter('10-0', '10')).toBe(false);
    expect(isAfter('1-0', '0')).toBe(true);
  });
});

describe('splitting output into lines', () => {
  function split(chunks: (string | Buffer)[], maxLineLength?: number): string[] {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line), maxLineLength ? { maxLineLength } : {});
    for (const chunk of chunks) splitter.push(chunk);
    splitter.end();
    return lines;
  }

  it('joins lines across chunks and multi-byte characters split between chunks', () => {
    const bytes = Buffer.from('héllo\r\nwörld\nlast');
    expect(split([bytes.subarray(0, 2), bytes.subarray(2, 9), bytes.subarray(9)])).toEqual([
      'héllo',
      'wörld',
      'last',
    ]);
  });

  it('keeps a secret split across chunks whole, so it can be masked', () => {
    const masker = new SecretMasker(['topsecret']);
    expect(split(['token=top', 'secret\n']).map((line) => masker.mask(line))).toEqual(['token=***']);
  });

  it('cuts a line that never ends instead of holding it all', () => {
    expect(split(['a'.repeat(30), 'a'.repeat(30), 'b\nnext\n'], 40)).toEqual(['a'.repeat(60), 'next']);
  });
});

describe('masking secrets', () => {
  it('masks the longer of two overlapping secrets whole', () => {
    expect(new SecretMasker(['abc', 'abcdef']).mask('x abcdef abc')).toBe('x *** ***');
  });

  it('treats secrets as plain text, not patterns', () => {
    expect(new SecretMasker(['a.c$']).mask('abc a.c$')).toBe('abc ***');
  });
});
