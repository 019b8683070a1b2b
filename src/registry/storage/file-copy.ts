import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/**
 * Recycled read buffers for copying blobs to sockets: serving a large blob through fresh 1 MiB
 * Buffers churns external memory and triggers a major GC every few dozen MiB; reusing a few avoids it.
 */
export class BufferPool {
  readonly #size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];

  constructor(size: number, max: number) {
    this.#size = size;
    this.#max = max;
  }

  get bufferSize(): number {
    return this.#size;
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#size);
  }

  release(buffer: Buffer): void {
    if (this.#free.length < this.#max) this.#free.push(buffer);
  }
}

/** Bytes read from a file per write to the destination. */
export const copyChunkSize = 1024 * 1024;
const copyBuffers = new BufferPool(copyChunkSize, 64);

/**
 * How far the file may be read from `position` on (exclusive); `position` itself when there is
 * nothing more. For a file still being written it may wait for more bytes.
 */
export type ReadableEnd = (position: number) => number | Promise<number>;

/**
 * Copies a file from `start` into `destination` (not ending it) through recycled buffers, reading
 * the next chunk while the previous one is being written, and resolving once the destination took
 * the last one.
 */
export async function copyFileTo(
  file: FileHandle,
  destination: Writable,
  start: number,
  readableEnd: ReadableEnd,
): Promise<void> {
  const readAt = async (at: number): Promise<Chunk | null> => {
    const end = await readableEnd(at);
    if (end <= at) return null;
    const buffer = copyBuffers.take();
    try {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - at), at);
      if (bytesRead === 0) throw new Error(`the file ended early, at byte ${at} of ${end}`);
      return { buffer, length: bytesRead };
    } catch (error) {
      copyBuffers.release(buffer);
      throw error;
    }
  };
  let next = readAt(start);
  try {
    for (let chunk = await next, position = start; chunk; chunk = await next) {
      position += chunk.length;
      next = readAt(position);
      try {
        await writeChunk(destination, chunk.buffer.subarray(0, chunk.length));
      } finally {
        copyBuffers.release(chunk.buffer);
      }
    }
  } finally {
    await next.then(
      (chunk) => chunk && copyBuffers.release(chunk.buffer),
      () => {},
    );
  }
}

interface Chunk {
  buffer: Buffer;
  length: number;
}

function writeChunk(destination: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (destination.destroyed) return reject(new Error('the client went away'));
    destination.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
