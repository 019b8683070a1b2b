import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { createDigester, digestAlgorithm, finishDigest, type Digest } from '../../registry/digest.ts';
import type { BlobCopy, ByteRange } from '../../registry/storage/driver.ts';
import { copyFileTo } from '../../registry/storage/file-copy.ts';

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
  /**
   * Also given every byte, in order, as it arrives (storage for the blob, say): ended once the blob
   * is verified, destroyed if the download fails. Its own failure does not fail the fill.
   */
  sink?: Writable;
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

/**
 * Readers are woken when this much more is in the spool, when the download ends, and otherwise
 * `wakeDelayMs` after bytes arrived, so a stalled upstream never keeps received bytes from them.
 */
const wakeEvery = 256 * 1024;
const wakeDelayMs = 5;
/** Received bytes waiting for the spool beyond which the upstream body is paused. */
const maxUnwritten = 4 * 1024 * 1024;

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
  /** Bytes received from the upstream (and hashed); the spool holds `#written` of them. */
  #received = 0;
  #written = 0;
  #wokenAt = 0;
  #verified = false;
  #failure: unknown;
  #readers = 0;
  #retired = false;
  #waiters: (() => void)[] = [];
  #wakeTimer: NodeJS.Timeout | undefined;
  readonly #sink: Writable | undefined;
  #sinkFull = false;

  private constructor(options: BlobFillOptions, spool: FileHandle) {
    this.digest = options.digest;
    this.spoolPath = options.spoolPath;
    this.#sink = options.sink;
    this.#sink?.on('error', () => {});
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

  /** Whether the download failed: nobody should join it any more. */
  get failed(): boolean {
    return this.#failure !== undefined;
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
   * Copies the blob (or `range` of it) into a destination as its bytes arrive: those already
   * received first, whenever the reader joined. The copy fails if the download does. Call only while
   * the fill is not retired, and run the copy it returns.
   */
  async openCopy(range?: ByteRange): Promise<BlobCopy> {
    if (this.#retired) throw new Error(`the spool of ${this.digest} is retired`);
    this.#readers++;
    let file: FileHandle;
    try {
      file = await open(this.spoolPath, 'r');
    } catch (error) {
      await this.#readerLeft();
      throw error;
    }
    return async (destination) => {
      try {
        await copyFileTo(file, destination, range?.start ?? 0, (position) =>
          this.#readableEnd(position, range),
        );
      } finally {
        await file.close().catch(() => {});
        await this.#readerLeft();
      }
    };
  }

  /** How far a reader at `position` may read: waits for bytes still to come, and holds back the last one until verified. */
  async #readableEnd(position: number, range: ByteRange | undefined): Promise<number> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const end = range ? range.end + 1 : this.#size;
      if (end !== undefined && position >= end) return position;
      const available = this.#verified
        ? this.#written
        : Math.min(this.#written, (this.#size ?? Infinity) - 1);
      if (position < available) return Math.min(available, end ?? Infinity);
      await this.#nextChange();
    }
  }

  async #readerLeft(): Promise<void> {
    this.#readers--;
    await this.#removeSpoolIfUnused();
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
      this.#sink?.end();
    } catch (error) {
      this.#failure = error;
      this.#sink?.destroy(error as Error);
      throw error;
    } finally {
      await spool.close().catch(() => {});
      this.#wake();
    }
  }

  /**
   * Appends to the spool what the upstream sends from the current offset on, to the end. Chunks are
   * hashed as they arrive and written in batches while the next ones arrive; it settles once every
   * byte received is in the spool, so a resumption starts right after the last one.
   */
  async #receive(
    source: FillSource,
    spool: FileHandle,
    hash: ReturnType<typeof createDigester>,
  ): Promise<void> {
    const { body, size } = await source(this.#received);
    if (size !== undefined) {
      if (this.#size !== undefined && size !== this.#size) {
        body.destroy();
        throw new FillSizeError(`upstream said the blob has ${size} bytes, then ${this.#size}`);
      }
      this.#size = size;
      this.#wake();
    }
    const spooling = new SpoolWriter(spool, this.#written, (written) => {
      this.#written = written;
      if (written - this.#wokenAt >= wakeEvery || this.#wokenAt === 0) this.#wake();
      else this.#wakeSoon();
      resumeIfRoom();
    });
    const resumeIfRoom = () => {
      if (body.isPaused() && !this.#sinkFull && spooling.pending < maxUnwritten / 2) body.resume();
    };
    try {
      await new Promise<void>((resolve, reject) => {
        body.on('data', (chunk: Buffer) => {
          if (this.#size !== undefined && this.#received + chunk.length > this.#size) {
            reject(new FillSizeError(`upstream sent more than the ${this.#size} bytes it announced`));
            return;
          }
          hash.update(chunk);
          this.#received += chunk.length;
          spooling.add(chunk);
          if (spooling.pending >= maxUnwritten) body.pause();
          this.#feedSink(chunk, body, resumeIfRoom);
        });
        body.once('end', resolve);
        body.once('error', reject);
        body.once('close', () => reject(new Error('the upstream closed the blob download early')));
        spooling.failed.catch(reject);
      });
    } finally {
      body.destroy();
      await spooling.drained();
      this.#wake();
    }
  }

  /** Passes the chunk on to the sink, pausing the upstream while the sink is full. */
  #feedSink(chunk: Buffer, body: Readable, resumeIfRoom: () => void): void {
    const sink = this.#sink;
    if (!sink || sink.destroyed || sink.write(chunk)) return;
    this.#sinkFull = true;
    body.pause();
    const drained = () => {
      sink.off('drain', drained).off('close', drained);
      this.#sinkFull = false;
      resumeIfRoom();
    };
    sink.on('drain', drained).on('close', drained);
  }

  /** Wakes every reader and waiter: more bytes, the size, the end. */
  #wake(): void {
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wokenAt = this.#written;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #wakeSoon(): void {
    this.#wakeTimer ??= setTimeout(() => this.#wake(), wakeDelayMs);
  }

  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * Writes chunks to the spool in order, in one `writev` per batch: while one batch is being written,
 * the chunks arriving meanwhile make up the next.
 */
class SpoolWriter {
  readonly #spool: FileHandle;
  readonly #onWritten: (written: number) => void;
  #written: number;
  #queue: Buffer[] = [];
  #pending = 0;
  #writing: Promise<void> | undefined;
  #fail!: (error: unknown) => void;
  /** Rejects (with a `SpoolWriteError`) when a write fails; nothing more is written then. */
  readonly failed = new Promise<never>((_, reject) => (this.#fail = reject));
  #failure: unknown;

  constructor(spool: FileHandle, written: number, onWritten: (written: number) => void) {
    this.#spool = spool;
    this.#written = written;
    this.#onWritten = onWritten;
    this.failed.catch(() => {});
  }

  /** Bytes added and not written yet. */
  get pending(): number {
    return this.#pending;
  }

  add(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.#pending += chunk.length;
    this.#writing ??= this.#writeQueued();
  }

  /** Settles once everything added is written; throws if a write failed. */
  async drained(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #writeQueued(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failure === undefined) {
        const batch = this.#queue;
        this.#queue = [];
        const { bytesWritten } = await this.#spool.writev(batch, this.#written);
        const length = batch.reduce((total, chunk) => total + chunk.length, 0);
        if (bytesWritten !== length) throw new Error(`wrote ${bytesWritten} of ${length} bytes`);
        this.#written += length;
        this.#pending -= length;
        this.#onWritten(this.#written);
      }
    } catch (error) {
      this.#failure = new SpoolWriteError(error);
      this.#fail(this.#failure);
    } finally {
      this.#writing = undefined;
    }
  }
}

/** Local disk trouble: not something resuming the download would mend. */
class SpoolWriteError extends Error {
  constructor(cause: unknown) {
    super('could not write the spool file', { cause });
  }
}
