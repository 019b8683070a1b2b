import type { Readable } from 'node:stream';
import { SlipwayError, StorageError } from '../../errors.ts';
import type { Digest } from '../digest.ts';
import type { RegistryMetrics } from '../metrics.ts';
import type {
  BlobCopy,
  BlobDriver,
  BlobStat,
  ByteRange,
  ListedBlob,
  ListedUpload,
  UploadWriter,
} from './driver.ts';
import { isUploadId } from './paths.ts';

/**
 * Wraps any driver: refuses upload ids that could escape their folder, turns foreign errors into
 * `StorageError` (typed not-found errors pass through), and times every operation.
 */
export class CheckedDriver implements BlobDriver {
  readonly #inner: BlobDriver;
  readonly #metrics: RegistryMetrics | undefined;

  constructor(inner: BlobDriver, metrics?: RegistryMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  stat(digest: Digest): Promise<BlobStat> {
    return this.#run('stat', () => this.#inner.stat(digest));
  }

  read(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.#run('read', () => this.#inner.read(digest, range));
  }

  openCopy(digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    return this.#run('read', () => this.#inner.openCopy(digest, range));
  }

  delete(digest: Digest): Promise<void> {
    return this.#run('delete', () => this.#inner.delete(digest));
  }

  redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string | null> {
    return this.#run('redirect', () => this.#inner.redirectUrl(digest, expiresInSeconds));
  }

  async openUpload(uploadId: string): Promise<UploadWriter> {
    if (!isUploadId(uploadId))
      throw new StorageError(`refusing malformed upload id "${uploadId.slice(0, 64)}"`);
    const writer = await this.#run('open_upload', () => this.#inner.openUpload(uploadId));
    return {
      get size() {
        return writer.size;
      },
      append: (source, signal) => this.#run('append', () => writer.append(source, signal)),
      readHeld: () => this.#run('read_held', () => writer.readHeld()),
      commit: (digest) => this.#run('commit', () => writer.commit(digest)),
      abort: () => this.#run('abort', () => writer.abort()),
    };
  }

  listBlobs(): AsyncIterable<ListedBlob> {
    return this.#list('list_blobs', () => this.#inner.listBlobs());
  }

  listUploads(): AsyncIterable<ListedUpload> {
    return this.#list('list_uploads', () => this.#inner.listUploads());
  }

  checkHealth(): Promise<void> {
    return this.#run('health', () => this.#inner.checkHealth());
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #run<T>(operation: string, action: () => Promise<T>): Promise<T> {
    const stop = this.#metrics?.storageDuration.startTimer({ driver: this.#inner.kind, operation });
    try {
      return await action();
    } catch (error) {
      throw this.#failure(operation, error);
    } finally {
      stop?.();
    }
  }

  async *#list<T>(operation: string, list: () => AsyncIterable<T>): AsyncIterable<T> {
    const stop = this.#metrics?.storageDuration.startTimer({ driver: this.#inner.kind, operation });
    try {
      yield* list();
    } catch (error) {
      throw this.#failure(operation, error);
    } finally {
      stop?.();
    }
  }

  #failure(operation: string, error: unknown): unknown {
    this.#metrics?.storageErrors.inc({ driver: this.#inner.kind, operation });
    if (error instanceof SlipwayError || isAbort(error)) return error;
    return new StorageError(`${this.#inner.kind} storage ${operation} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function isAbort(error: unknown): boolean {
  const code = (error as { code?: string; name?: string })?.code;
  return code === 'ABORT_ERR' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET';
}
