import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture?: string; os?: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface ManifestJson {
  schemaVersion: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** An OCI image layout on disk (what `skopeo copy … oci:DIR:TAG` and `buildah push … oci:` write). */
export class OciLayout {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async index(): Promise<{ manifests: Descriptor[] }> {
    return JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  }

  /** The descriptor the layout's index.json names `tag` (org.opencontainers.image.ref.name). */
  async descriptor(tag: string): Promise<Descriptor> {
    const index = await this.index();
    const found = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
    if (!found) throw new Error(`${this.dir} has no image tagged ${tag}: ${JSON.stringify(index)}`);
    return found;
  }

  blob(digest: string): Promise<Buffer> {
    const [algorithm, hex] = digest.split(':');
    return readFile(join(this.dir, 'blobs', algorithm!, hex!));
  }

  async manifest(digest: string): Promise<ManifestJson> {
    return JSON.parse((await this.blob(digest)).toString('utf8')) as ManifestJson;
  }

  /** Every blob file in the layout, as digest → sha256 of its bytes. */
  async blobDigests(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const hex of await readdir(join(this.dir, 'blobs', 'sha256'))) {
      out.set(`sha256:${hex}`, sha256(await readFile(join(this.dir, 'blobs', 'sha256', hex))));
    }
    return out;
  }

  /**
   * Every blob reachable from `digest` (an index or an image manifest), including the manifests
   * themselves: what a registry must serve for the image to be pulled whole.
   */
  async reachable(digest: string): Promise<Set<string>> {
    const seen = new Set<string>([digest]);
    const manifest = await this.manifest(digest);
    for (const child of manifest.manifests ?? [])
      for (const d of await this.reachable(child.digest)) seen.add(d);
    if (manifest.config) seen.add(manifest.config.digest);
    for (const layer of manifest.layers ?? []) seen.add(layer.digest);
    return seen;
  }
}

/** The regular files in a tar (gzip-compressed or not) layer, by path without a leading "./" or "/". */
export function tarFiles(layer: Buffer): Map<string, Buffer> {
  const tar = layer[0] === 0x1f && layer[1] === 0x8b ? gunzipSync(layer) : layer;
  const files = new Map<string, Buffer>();
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const body = tar.subarray(offset + 512, offset + 512 + size);
    let name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    if (paxPath !== undefined) name = paxPath;
    if (longName !== undefined) name = longName;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      const match = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = match?.[1];
    } else {
      if (type === '0' || type === '7') files.set(name.replace(/^\.?\//, ''), Buffer.from(body));
      longName = undefined;
      paxPath = undefined;
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
