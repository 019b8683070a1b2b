import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import {
  mkdir,
  open,
  opendir,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
  readFile,
  unlink,
} from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, UploadNotFoundError } from '../../errors.ts';
import type { Digest } from '../digest.ts';
import { copyChunkSize, copyFileTo } from './file-copy.ts';
import type {
  BlobCopy,
  BlobDriver,
  BlobStat,
  ByteRange,
  ListedBlob,
  ListedUpload,
  UploadWriter,
} from './driver.ts';
import { digestOfBlobKey, isUploadId, storagePaths } from './paths.ts';

/** Blobs as files under one root. Writes land in `uploads/` and are renamed into place, so readers never see a partial blob. */
export class FsDriver implements BlobDriver {
  readonly kind = 'filesystem';
  readonly #root: string;
  readonly #syncWrites: boolean;

  /** `syncWrites`: flush each blob to disk before it becomes visible (survives power loss, costs speed). */
  constructor(root: string, options: { syncWrites?: boolean } = {}) {
    this.#root = root;
    this.#syncWrites = options.syncWrites ?? true;
  }

  async stat(digest: Digest): Promise<BlobStat> {
    try {
      const info = await stat(this.#path(storagePaths.blob(digest)));
      return { size: info.size };
    } catch (error) {
      throw mapNotFound(error, () => new BlobNotFoundError(digest));
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await open(this.#path(storagePaths.blob(digest)), 'r');
    } catch (error) {
      throw mapNotFound(error, () => new BlobNotFoundError(digest));
    }
    return handle.createReadStream({
      start: range?.start,
      end: range?.end,
      highWaterMark: copyChunkSize,
      autoClose: true,
    });
  }

  /** Reads one chunk ahead into recycled buffers while the previous one is written. */
  async openCopy(digest: Digest, range?: ByteRange): Promise<BlobCopy> {
    let handle;
    try {
      handle = await open(this.#path(storagePaths.blob(digest)), 'r');
    } catch (error) {
      throw mapNotFound(error, () => new BlobNotFoundError(digest));
    }
    const file = handle;
    return async (destination) => {
      try {
        const end = range ? range.end + 1 : (await file.stat()).size;
        await copyFileTo(file, destination, range?.start ?? 0, () => end);
      } finally {
        await file.close();
      }
    };
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.#path(storagePaths.blob(digest)), { force: true });
  }

  async redirectUrl(): Promise<string | null> {
    return null;
  }

  async openUpload(uploadId: string): Promise<UploadWriter> {
    const file = this.#path(storagePaths.uploadData(uploadId));
    await mkdir(dirname(file), { recursive: true });
    const handle = await open(file, 'a');
    const { size } = await handle.stat();
    await handle.close();
    return new FsUploadWriter(
      file,
      size,
      uploadId,
      (digest) => this.#path(storagePaths.blob(digest)),
      this.#path(storagePaths.uploadRoot(uploadId)),
      this.#syncWrites,
    );
  }

  async *listBlobs(): AsyncIterable<ListedBlob> {
    const root = this.#path(storagePaths.blobsRoot);
    const entries = await opendir(root, { recursive: true, bufferSize: 256 }).catch(ignoreNotFound);
    if (!entries) return;
    for await (const entry of entries) {
      if (!entry.isFile()) continue;
      const file = join(entry.parentPath, entry.name);
      const digest = digestOfBlobKey(relative(this.#root, file).split(sep).join('/'));
      if (!digest) continue;
      const info = await stat(file).catch(ignoreNotFound);
      if (info) yield { digest, size: info.size, modifiedAt: info.mtime };
    }
  }

  async *listUploads(): AsyncIterable<ListedUpload> {
    const root = this.#path(storagePaths.uploadsRoot);
    for (const id of (await readdir(root).catch(ignoreNotFound)) ?? []) {
      if (!isUploadId(id)) continue;
      const info =
        (await stat(this.#path(storagePaths.uploadData(id))).catch(ignoreNotFound)) ??
        (await stat(this.#path(storagePaths.uploadRoot(id))).catch(ignoreNotFound));
      if (info) yield { id, modifiedAt: info.mtime };
    }
  }

  async checkHealth(): Promise<void> {
    const token = randomUUID();
    const probe = this.#path(storagePaths.healthProbe(token));
    await mkdir(dirname(probe), { recursive: true });
    await writeFile(probe, token);
    if ((await readFile(probe, 'utf8')) !== token)
      throw new Error('storage returned different bytes than written');
    await unlink(probe);
  }

  async close(): Promise<void> {}

  #path(key: string): string {
    return join(this.#root, key);
  }
}

class FsUploadWriter implements UploadWriter {
  #size: number;
  readonly #file: string;
  readonly #uploadId: string;
  readonly #blobPath: (digest: Digest) => string;
  readonly #root: string;
  readonly #syncWrites: boolean;

  constructor(
    file: string,
    size: number,
    uploadId: string,
    blobPath: (digest: Digest) => string,
    root: string,
    syncWrites: boolean,
  ) {
    this.#syncWrites = syncWrites;
    this.#file = file;
    this.#size = size;
    this.#uploadId = uploadId;
    this.#blobPath = blobPath;
    this.#root = root;
  }

  get size(): number {
    return this.#size;
  }

  async append(source: Readable, signal?: AbortSignal): Promise<void> {
    const sink = createWriteStream(this.#file, { flags: 'a', highWaterMark: copyChunkSize });
    try {
      await pipeline(source, sink, signal ? { signal } : {});
    } finally {
      this.#size = (await stat(this.#file)).size;
    }
  }

  async readHeld(): Promise<Readable> {
    if (this.#size === 0) return Readable.from([]);
    try {
      const handle = await open(this.#file, 'r');
      return handle.createReadStream({ highWaterMark: copyChunkSize, end: this.#size - 1, autoClose: true });
    } catch (error) {
      throw mapNotFound(error, () => new UploadNotFoundError(this.#uploadId));
    }
  }

  async commit(digest: Digest): Promise<void> {
    if (this.#syncWrites) {
      const handle = await open(this.#file, 'r+');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
    const target = this.#blobPath(digest);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.#file, target);
    await rm(this.#root, { recursive: true, force: true });
  }

  async abort(): Promise<void> {
    await rm(this.#root, { recursive: true, force: true });
  }
}

function ignoreNotFound(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

function mapNotFound(error: unknown, notFound: () => Error): unknown {
  return (error as NodeJS.ErrnoException).code === 'ENOENT' ? notFound() : error;
}
