import type { Digest } from '../../registry/digest.ts';
import { OciError } from '../../registry/errors.ts';
import type { LocalRegistryStore } from '../../registry/local-store.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../../registry/manifest.ts';
import type { RepositoryName, TagName } from '../../registry/names.ts';
import type { Actor } from '../../registry/store.ts';
import type { UpstreamClient } from '../upstream/client.ts';
import type { BandwidthLimiter } from './bandwidth.ts';
import { selectIndexChildren, type PlatformSelection } from './platform-selector.ts';

export interface ImageCopierOptions {
  upstream: UpstreamClient;
  /** The repository on the upstream, e.g. library/nginx. */
  remote: string;
  local: LocalRegistryStore;
  /** The repository here. */
  repository: RepositoryName;
  /** Which children of an index are copied; the index itself is always stored byte-exact. */
  platforms: PlatformSelection;
  /** Who the tag moves are recorded as (the `pusher` of `repo_push`). */
  actor: Actor;
  signal?: AbortSignal | undefined;
  /** Paces every blob download of the copier, together; none when unlimited. */
  bandwidth?: BandwidthLimiter | undefined;
}

interface FetchedManifest {
  digest: Digest;
  body: Buffer;
  mediaType: string;
  parsed: ParsedManifest;
}

/**
 * Copies images from one upstream repository into one local repository, the way a push would: blobs
 * first (linked when Slipway already stores them anywhere, else streamed from the upstream and
 * verified), then the manifests of an index's selected children, then the manifest itself byte-exact
 * with the tag moved to it, in the transaction that checks everything it references is here. A copy
 * that fails part way leaves the tag where it was.
 *
 * One copier serves a whole sync run: a blob several tags need at the same time is downloaded once.
 */
export class ImageCopier {
  readonly #options: ImageCopierOptions;
  readonly #blobsInFlight = new Map<Digest, Promise<number>>();

  constructor(options: ImageCopierOptions) {
    this.#options = options;
  }

  /** Copies the manifest `digest` with what it needs and moves `tag` to it; the bytes downloaded. */
  async copyTag(tag: TagName, digest: Digest): Promise<number> {
    const manifest = await this.#fetchManifest(digest);
    const bytes = manifest.body.length + (await this.#copyContents(manifest));
    await this.#store(manifest, [tag]);
    return bytes;
  }

  /**
   * Whether the stored manifest `digest` lacks selected children: an index copied before its mirror's
   * platform selection was widened.
   */
  async lacksChildren(digest: Digest): Promise<boolean> {
    const { local, repository, platforms } = this.#options;
    const stored = await local.getManifest(repository, { kind: 'digest', digest });
    const { manifests } = parseManifest(stored.content, stored.mediaType);
    for (const child of selectIndexChildren(manifests, platforms)) {
      if (!(await this.#hasManifest(child.digest)) || (await this.lacksChildren(child.digest))) return true;
    }
    return false;
  }

  /** The blobs of an image, or the selected children of an index (recursively). */
  async #copyContents(manifest: FetchedManifest): Promise<number> {
    let bytes = 0;
    for (const blob of uniqueByDigest(manifest.parsed.blobs)) bytes += await this.#copyBlob(blob.digest);
    const children = selectIndexChildren(manifest.parsed.manifests, this.#options.platforms);
    for (const child of uniqueByDigest(children)) bytes += await this.#copyChild(child.digest);
    return bytes;
  }

  async #copyChild(digest: Digest): Promise<number> {
    if (await this.#hasManifest(digest)) return 0;
    const manifest = await this.#fetchManifest(digest);
    const bytes = manifest.body.length + (await this.#copyContents(manifest));
    await this.#store(manifest, []);
    return bytes;
  }

  async #fetchManifest(digest: Digest): Promise<FetchedManifest> {
    const { upstream, remote, signal } = this.#options;
    const fetched = await upstream.getManifest(remote, digest, undefined, { signal });
    return { ...fetched, parsed: parseManifest(fetched.body, fetched.mediaType) };
  }

  async #store(manifest: FetchedManifest, tags: TagName[]): Promise<void> {
    const { local, repository, actor } = this.#options;
    const reference = { kind: 'digest', digest: manifest.digest } as const;
    await local.putManifest(repository, reference, manifest.body, manifest.mediaType, tags, actor);
  }

  async #hasManifest(digest: Digest): Promise<boolean> {
    try {
      await this.#options.local.getManifest(this.#options.repository, { kind: 'digest', digest });
      return true;
    } catch (error) {
      if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN') return false;
      throw error;
    }
  }

  /** Links the blob when Slipway stores it anywhere, else downloads it once; the bytes downloaded. */
  #copyBlob(digest: Digest): Promise<number> {
    const running = this.#blobsInFlight.get(digest);
    if (running) return running.then(() => 0);
    const copy = this.#linkOrDownload(digest).finally(() => this.#blobsInFlight.delete(digest));
    this.#blobsInFlight.set(digest, copy);
    return copy;
  }

  async #linkOrDownload(digest: Digest): Promise<number> {
    const { local, repository } = this.#options;
    if (await local.mountBlob(repository, digest, undefined)) return 0;
    return this.#download(digest);
  }

  /** Streams the blob from the upstream into storage, which verifies the digest before keeping it. */
  async #download(digest: Digest): Promise<number> {
    const { upstream, remote, local, repository, signal, bandwidth } = this.#options;
    const blob = await upstream.getBlob(remote, digest, { signal });
    const body = bandwidth ? bandwidth.throttle(blob.body, signal) : blob.body;
    try {
      await local.uploadMonolithic(repository, digest, body);
    } catch (error) {
      body.destroy();
      throw error;
    }
    return (await local.statBlob(repository, digest)).size;
  }
}

function uniqueByDigest(descriptors: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((descriptor) => !seen.has(descriptor.digest) && seen.add(descriptor.digest));
}
