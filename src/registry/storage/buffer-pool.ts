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
