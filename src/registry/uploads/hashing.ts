import type { Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';

const chunkBuffer = 1024 * 1024;

/** Passes `source` through unchanged while feeding every byte to `hash`; source errors propagate. */
export function hashingStream(source: Readable, hash: Hash): Readable {
  const tap = new Transform({
    highWaterMark: chunkBuffer,
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  // The source may have failed before it got here (the caller awaited storage first): its error is gone.
  const failedEarly =
    source.errored ??
    (source.destroyed && !source.readableEnded ? new Error('the body closed before it was read') : null);
  if (failedEarly) {
    tap.destroy(failedEarly);
    return tap;
  }
  source.once('error', (error) => tap.destroy(error));
  source.once('aborted', () =>
    tap.destroy(Object.assign(new Error('client aborted the upload'), { code: 'ECONNRESET' })),
  );
  return source.pipe(tap);
}
