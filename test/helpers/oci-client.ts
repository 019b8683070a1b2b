import { randomBytes } from 'node:crypto';
import { computeDigest, type Digest } from '../../src/registry/digest.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';

/** A minimal OCI client over fetch, for tests that push and pull through the /v2 API. */
export class OciClient {
  readonly base: string;
  /** Sent with every request, e.g. an Authorization header. */
  readonly headers: Record<string, string>;

  constructor(base: string, headers: Record<string, string> = {}) {
    this.base = base;
    this.headers = headers;
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, {
      ...init,
      headers: { ...this.headers, ...(init.headers as Record<string, string> | undefined) },
    });
  }

  /** Monolithic upload (POST ?digest=); returns the digest. */
  async pushBlob(repository: string, content: Buffer): Promise<Digest> {
    const digest = computeDigest(content);
    const response = await this.fetch(`/v2/${repository}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: content,
    });
    if (response.status !== 201)
      throw new Error(`blob push failed: ${response.status} ${await response.text()}`);
    return digest;
  }

  async putManifest(
    repository: string,
    reference: string,
    body: Buffer | string,
    mediaType: string,
  ): Promise<Response> {
    return this.fetch(`/v2/${repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
  }

  /** Pushes config and layers, then the manifest; returns what was pushed. */
  async pushImage(
    repository: string,
    reference: string,
    options: {
      layers?: Buffer[];
      subject?: { digest: Digest; size: number; mediaType: string };
      artifactType?: string;
      platform?: string;
    } = {},
  ): Promise<PushedImage> {
    const layers = options.layers ?? [randomBytes(512)];
    const config = Buffer.from(
      JSON.stringify({
        architecture: options.platform ?? 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
        nonce: randomBytes(8).toString('hex'),
      }),
    );
    const configDigest = await this.pushBlob(repository, config);
    const layerDigests: Digest[] = [];
    for (const layer of layers) layerDigests.push(await this.pushBlob(repository, layer));
    const manifest = imageManifest(
      { digest: configDigest, size: config.length },
      layers.map((l, i) => ({ digest: layerDigests[i]!, size: l.length })),
      { artifactType: options.artifactType, subject: options.subject },
    );
    const response = await this.putManifest(repository, reference, manifest, mediaTypes.ociManifest);
    if (response.status !== 201)
      throw new Error(`manifest push failed: ${response.status} ${await response.text()}`);
    return { digest: computeDigest(manifest), manifest, configDigest, layerDigests, size: manifest.length };
  }

  /** Pushes an OCI index over already pushed manifests. */
  async pushIndex(
    repository: string,
    reference: string,
    children: Array<{ digest: Digest; size: number; arch: string }>,
  ): Promise<{ digest: Digest; body: Buffer }> {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        manifests: children.map((c) => ({
          mediaType: mediaTypes.ociManifest,
          digest: c.digest,
          size: c.size,
          platform: { os: 'linux', architecture: c.arch },
        })),
      }),
    );
    const response = await this.putManifest(repository, reference, body, mediaTypes.ociIndex);
    if (response.status !== 201)
      throw new Error(`index push failed: ${response.status} ${await response.text()}`);
    return { digest: computeDigest(body), body };
  }

  async status(path: string, init?: RequestInit): Promise<number> {
    const response = await this.fetch(path, init);
    await response.arrayBuffer();
    return response.status;
  }
}

export interface PushedImage {
  digest: Digest;
  manifest: Buffer;
  configDigest: Digest;
  layerDigests: Digest[];
  size: number;
}

/** The first error code of a registry error response. */
export async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { errors?: Array<{ code: string }> };
  return body.errors?.[0]?.code;
}

/** An OCI image manifest over pushed config and layer blobs, as bytes ready to PUT. */
export function imageManifest(
  config: { digest: Digest; size: number },
  layers: Array<{ digest: Digest; size: number }>,
  extra: { artifactType?: string; subject?: { digest: Digest; size: number; mediaType: string } } = {},
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer })),
      ...(extra.subject ? { subject: extra.subject } : {}),
    }),
  );
}
