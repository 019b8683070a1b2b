import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { metrics } from '../helpers/registry-http.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

const series = {
  mounted: ['slipway_blob_uploads_completed_total', { method: 'mount' }],
  chunked: ['slipway_blob_uploads_completed_total', { method: 'chunked' }],
  monolithic: ['slipway_blob_uploads_completed_total', { method: 'monolithic' }],
  bytesReceived: ['slipway_blob_bytes_received_total'],
} satisfies Record<string, [string, Record<string, string>?]>;

/**
 * skopeo copy between two repositories of the same Slipway must not send layer bytes again: skopeo
 * asks to mount each layer from the source repository (POST …/blobs/uploads/?mount=…&from=…) and
 * Slipway links the blob it already has.
 *
 * skopeo 1.9 (containers/image 5.23) tries mounts for layers only: it always GETs the config and
 * uploads it to the new repository (seen with `skopeo --debug`, against CNCF Distribution as well).
 * So the expected new bytes are exactly the config sizes, and the layers, the bulk, arrive by mount.
 */
describe('skopeo copy between repositories of one Slipway mounts blobs instead of uploading them', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-mount-');
    images = await buildSampleImages(workspace, 'mount');
    slipway = await startSlipway();
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const at = (ref: string) => `docker://${slipway.host}/${ref}`;
  const copy = (...args: string[]) =>
    workspace.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args]);

  it('mounts every layer of a single-arch image; only the config is uploaded again', async () => {
    const { single } = images;
    await copy(single.ref, at('team/source:1'));
    const before = await metrics(slipway.url, series);

    await copy(
      '--digestfile',
      workspace.path('mounted-single.digest'),
      at('team/source:1'),
      at('other/dest:1'),
    );

    const after = await metrics(slipway.url, series);
    const layers = single.manifest.layers!;
    expect(layers.length).toBe(2);
    expect(after.mounted - before.mounted, 'blobs mounted').toBe(layers.length);
    expect(after.chunked + after.monolithic - (before.chunked + before.monolithic), 'blobs uploaded').toBe(1);
    expect(after.bytesReceived - before.bytesReceived, 'blob bytes received (the config only)').toBe(
      single.manifest.config!.size,
    );

    // The mounted repository serves the image whole, as pushed.
    const out = workspace.path('out', 'mounted-single');
    await copy(at('other/dest:1'), `oci:${out}:1`);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(single.digest);
    for (const digest of await single.layout.reachable(single.digest)) {
      expect(sha256(await pulled.layout.blob(digest)), `blob ${digest} from the mounted repository`).toBe(
        digest,
      );
    }
  });

  it('mounts every layer of every image of a multi-arch index copied with --all', async () => {
    const { multi } = images;
    await copy('--all', multi.ref, at('team/multi-source:1'));
    const before = await metrics(slipway.url, series);

    await copy('--all', at('team/multi-source:1'), at('other/multi-dest:1'));

    const after = await metrics(slipway.url, series);
    const children = Object.values(multi.children);
    const layerCount = children.reduce((n, c) => n + c.manifest.layers!.length, 0);
    const configBytes = children.reduce((n, c) => n + c.manifest.config!.size, 0);
    expect(after.mounted - before.mounted, 'blobs mounted').toBe(layerCount);
    expect(after.chunked + after.monolithic - (before.chunked + before.monolithic), 'blobs uploaded').toBe(
      children.length,
    );
    expect(after.bytesReceived - before.bytesReceived, 'blob bytes received (configs only)').toBe(
      configBytes,
    );

    const raw = (await workspace.skopeo(['inspect', '--raw', '--tls-verify=false', at('other/multi-dest:1')]))
      .stdoutBytes;
    expect(raw.equals(multi.raw)).toBe(true);
    for (const child of children) {
      for (const layer of child.manifest.layers!) {
        const response = await fetch(`${slipway.url}/v2/other/multi-dest/blobs/${layer.digest}`);
        expect(response.status).toBe(200);
        expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(layer.digest);
      }
    }
  });

  it('does not mount a blob from a repository that does not hold it', async () => {
    // A mount request naming a repository without the blob must fall back to an upload session,
    // even though the blob is in the registry (in team/source).
    await copy(images.single.ref, at('team/source:1'));
    const layer = images.single.manifest.layers![0]!;
    const response = await fetch(
      `${slipway.url}/v2/other/elsewhere/blobs/uploads/?mount=${encodeURIComponent(layer.digest)}&from=team/never-had-it`,
      { method: 'POST' },
    );
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toMatch(/^\/v2\/other\/elsewhere\/blobs\/uploads\//);
    const blob = await fetch(`${slipway.url}/v2/other/elsewhere/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(blob.status).toBe(404);
  });
});
