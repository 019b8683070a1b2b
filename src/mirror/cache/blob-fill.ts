import { EventEmitter, once } from 'node:events';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { createDigester, digestAlgorithm, finishDigest, type Digest } from '../../registry/digest.ts';
import type { ByteRange } from '../../registry/storage/driver.ts';

/** The upstream's bytes of the blob from `offset` on, and the whole blob's size when known. */
export type FillSource = (offset: number) => Promise<{ body: Readable; size: number | undefined }>;

export interface BlobFillOptions {
  digest: Digest;
  /** A file of its own for the bytes received so far; created here, removed once nobody reads it. */
  spoolPath: string;
  source: FillSource;
  /** Whether a failed request or a broken download is worth resuming where it stopped. */
  isResumable: (error: unknown) => boolean;
  /** Resumptions at most, each after a short pause; only a download that received bytes is resumed. Default 3. */
  maxResumes?: number;
  /** Called before each resumption, with what interrupted the download. */
  onResume?: (offset: number, error: unknown) => void;
}

/** The bytes received from the upstream are not the blob asked for. */
export class FillDigestError extends Error {
  constructor(expected: Digest, actual: Digest) {
    super(`upstream sent content with digest ${actual} for blob ${expected}`);
  }
}

/** The upstream's answers contradict each other on the blob's size. */
export class FillSizeError extends Error {}

const readChunk = 256 * 1024;

/**
 * One blob downloading from an upstream into a spool file, readable while it downloads: every reader
 * gets the bytes already received, then each chunk as it arrives, whenever it joined. The last byte is
 * held back until the whole blob hashed to its digest, so no client ever completes a download of bad
 * content. A broken download resumes where it stopped (`source` is asked again from that offset).
 * Memory stays constant: readers read the spool file, at their own pace.
 */
export class BlobFill {
  readonly digest: Digest;
  readonly spoolPath: string;
  /** Settles when the blob is whole and verified (then the spool holds exactly the blob), or failed. */
  readonly done: Promise<void>;
  #size: number | undefined;
  #received = 0;
  #verified = false;
  #failure: unknown;
  #readers = 0;
  #retired = false;
  readonly #changed = new EventEmitter().setMaxListeners(0);

  private constructor(options: BlobFillOptions, spool: FileHandle) {
    this.digest = options.digest;
    this.spoolPath = options.spoolPath;
    this.done = this.#download(options, spool);
    this.done.catch(() => {});
  }

  /** Creates the spool file and starts the download. */
  static async start(options: BlobFillOptions): Promise<BlobFill> {
    const spool = await open(options.spoolPath, 'wx');
    return new BlobFill(options, spool);
  }

  /** The bytes received so far. */
  get received(): number {
    return this.#received;
  }

  /** Whether the spool is going away: readers must go to storage instead. */
  get retired(): boolean {
    return this.#retired;
  }

  /** The blob's size, as soon as the upstream said it (else once the download ended). */
  async size(): Promise<number> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#size !== undefined) return this.#size;
      await this.#nextChange();
    }
  }

  /**
   * A stream of the blob (or of `range` of it) that waits for bytes still to come. It fails if the
   * download does. Call only while the fill is not retired.
   */
  openReader(range?: ByteRange): Readable {
    if (this.#retired) throw new Error(`the spool of ${this.digest} is retired`);
    this.#readers++;
    let position = range?.start ?? 0;
    let file: FileHandle | undefined;
    const read = async (): Promise<Buffer | null> => {
      file ??= await open(this.spoolPath, 'r');
      for (;;) {
        if (this.#failure !== undefined) throw this.#failure;
        const end = range ? range.end + 1 : this.#size;
        if (end !== undefined && position >= end) return null;
        const available = this.#verified ? this.#received : this.#received - 1;
        if (position < available) {
          const length = Math.min(readChunk, available - position, (end ?? Infinity) - position);
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await file.read(buffer, 0, length, position);
          position += bytesRead;
          return buffer.subarray(0, bytesRead);
        }
        await this.#nextChange();
      }
    };
    return new Readable({
      highWaterMark: readChunk,
      read() {
        read().then(
          (chunk) => this.push(chunk),
          (error: unknown) => this.destroy(error as Error),
        );
      },
      destroy: (error, callback) => {
        const closed = file ? file.close() : Promise.resolve();
        closed
          .catch(() => {})
          .finally(() => {
            this.#readers--;
            void this.#removeSpoolIfUnused();
            callback(error);
          });
      },
    });
  }

  /** No reader may join any more; the spool file goes once the last one is done. */
  async retire(): Promise<void> {
    this.#retired = true;
    await this.#removeSpoolIfUnused();
  }

  async #removeSpoolIfUnused(): Promise<void> {
    if (this.#retired && this.#readers === 0) await unlink(this.spoolPath).catch(() => {});
  }

  async #download(options: BlobFillOptions, spool: FileHandle): Promise<void> {
    const algorithm = digestAlgorithm(this.digest);
    const hash = createDigester(algorithm);
    const maxResumes = options.maxResumes ?? 3;
    try {
      for (let resumes = 0; ; resumes++) {
        const from = this.#received;
        try {
          await this.#receive(options.source, spool, hash);
          break;
        } catch (error) {
          if (error instanceof SpoolWriteError) throw error.cause;
          // A request that got nowhere is a failure to report, not a download to resume.
          const progressed = this.#received > from;
          if (!progressed || resumes >= maxResumes || !options.isResumable(error)) throw error;
          options.onResume?.(this.#received, error);
          await delay(100 * 2 ** resumes);
        }
      }
      if (this.#size !== undefined && this.#received !== this.#size) {
        throw new FillSizeError(`upstream sent ${this.#received} bytes of a ${this.#size}-byte blob`);
      }
      const actual = finishDigest(hash, algorithm);
      if (actual !== this.digest) throw new FillDigestError(this.digest, actual);
      this.#size = this.#received;
      this.#verified = true;
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      await spool.close().catch(() => {});
      this.#changed.emit('change');
    }
  }

  /** Appends to the spool what the upstream sends from the current offset on, to the end. */
  async #receive(
    source: FillSource,
    spool: FileHandle,
    hash: ReturnType<typeof createDigester>,
  ): Promise<void> {
    const { body, size } = await source(this.#received);
    try {
      if (size !== undefined) {
        if (this.#size !== undefined && size !== this.#size) {
          throw new FillSizeError(`upstream said the blob has ${size} bytes, then ${this.#size}`);
        }
        this.#size = size;
        this.#changed.emit('change');
      }
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (this.#size !== undefined && this.#received + chunk.length > this.#size) {
          throw new FillSizeError(`upstream sent more than the ${this.#size} bytes it announced`);
        }
        try {
          await spool.write(chunk, 0, chunk.length, this.#received);
        } catch (error) {
          throw new SpoolWriteError(error);
        }
        hash.update(chunk);
        this.#received += chunk.length;
        this.#changed.emit('change');
      }
    } finally {
      body.destroy();
    }
  }

  #nextChange(): Promise<unknown> {
    return once(this.#changed, 'change');
  }
}

/** Local disk trouble: not something resuming the download would mend. */
class SpoolWriteError extends Error {
  constructor(cause: unknown) {
    super('could not write the spool file', { cause });
  }
}
