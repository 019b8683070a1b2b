import { describe, expect, it } from 'vitest';
import type { BuildLogEntry } from '../../../src/builder/logs/entry.ts';
import { isAfter } from '../../../src/builder/logs/entry.ts';
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
