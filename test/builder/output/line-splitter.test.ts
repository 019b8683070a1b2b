import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../../src/builder/output/line-splitter.ts';

function split(chunks: (string | Buffer)[], maxLineLength?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineLength ? { maxLineLength } : {});
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  it('joins lines split across chunks and passes on the last partial line at the end', () => {
    const chunks = ['STEP 1/2: FR', 'OM scratch\nSTEP', ' 2/2\n', 'no newline at the end'];
    expect(split(chunks.map((chunk) => Buffer.from(chunk)))).toEqual([
      'STEP 1/2: FROM scratch',
      'STEP 2/2',
      'no newline at the end',
    ]);
    expect(split(chunks)).toEqual(split(chunks.map((chunk) => Buffer.from(chunk))));
  });

  it('keeps empty lines, drops the CR of CRLF and adds no line for a final newline', () => {
    expect(split([Buffer.from('a\r\n\r\nb\n')])).toEqual(['a', '', 'b']);
  });

  it('decodes multi-byte characters split between chunks', () => {
    const bytes = Buffer.from('héllo\r\nwörld ✓\nlast');
    expect(
      split([bytes.subarray(0, 2), bytes.subarray(2, 9), bytes.subarray(9, 16), bytes.subarray(16)]),
    ).toEqual(['héllo', 'wörld ✓', 'last']);
  });

  it('cuts a line that never ends instead of holding it all', () => {
    expect(split(['a'.repeat(30), 'a'.repeat(30), 'b\nnext\n'], 40)).toEqual(['a'.repeat(60), 'next']);
    expect(split(['a'.repeat(50), 'still the same line'], 40)).toEqual(['a'.repeat(50)]);
  });
});
