import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/registry/errors.ts';
import { parseRangeHeader, parseUploadContentRange } from '../../../src/registry/http/ranges.ts';

describe('blob Range header', () => {
  it.each([
    ['bytes=0-9', { start: 0, end: 9 }],
    ['bytes=90-', { start: 90, end: 99 }],
    ['bytes=-10', { start: 90, end: 99 }],
    ['bytes=50-500', { start: 50, end: 99 }],
    ['bytes=-500', { start: 0, end: 99 }],
  ])('%s of 100 bytes', (header, expected) => {
    expect(parseRangeHeader(header, 100)).toEqual(expected);
  });

  it('serves the whole blob without a usable single range', () => {
    expect(parseRangeHeader(undefined, 100)).toBeNull();
    expect(parseRangeHeader('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRangeHeader('items=0-1', 100)).toBeNull();
  });

  it.each(['bytes=100-', 'bytes=200-300', 'bytes=5-4', 'bytes=-0'])('answers 416 to %s', (header) => {
    try {
      parseRangeHeader(header, 100);
      expect.unreachable();
    } catch (error) {
      expect((error as OciError).status).toBe(416);
      expect((error as OciError).headers['Content-Range']).toBe('bytes */100');
    }
  });
});

describe('upload Content-Range', () => {
  it('reads start-end with or without a unit', () => {
    expect(parseUploadContentRange('0-99')).toEqual({ start: 0, end: 99 });
    expect(parseUploadContentRange('bytes 100-199/*')).toEqual({ start: 100, end: 199 });
    expect(parseUploadContentRange(undefined)).toBeUndefined();
  });

  it.each(['garbage', '10-5', '-5'])('refuses %s with 416', (header) => {
    try {
      parseUploadContentRange(header);
      expect.unreachable();
    } catch (error) {
      expect((error as OciError).code).toBe('BLOB_UPLOAD_INVALID');
      expect((error as OciError).status).toBe(416);
    }
  });
});
