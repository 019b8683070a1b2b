import { OciError } from '../errors.ts';
import type { ByteRange } from '../storage/driver.ts';

/**
 * `Range: bytes=a-b | a- | -n` against a blob of `size` bytes. Returns null to serve the whole blob
 * (no header, or a form we do not serve such as several ranges); throws 416 when unsatisfiable.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '' && last === '') return null;
  let start: number;
  let end: number;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) throw unsatisfiable(size);
  }
  if (start >= size) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): OciError {
  return new OciError('RANGE_INVALID', `requested range is not satisfiable for a blob of ${size} bytes`, {
    status: 416,
    headers: { 'Content-Range': `bytes */${size}` },
  });
}

/** Upload `Content-Range: start-end` (inclusive). */
export function parseUploadContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match) {
    throw new OciError(
      'BLOB_UPLOAD_INVALID',
      `malformed Content-Range "${header.slice(0, 100)}": expected start-end`,
      {
        status: 416,
      },
    );
  }
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) {
    throw new OciError('BLOB_UPLOAD_INVALID', `Content-Range ${header} ends before it starts`, {
      status: 416,
    });
  }
  return { start, end };
}
