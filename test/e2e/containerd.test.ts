import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { parseCtrImages, startContainerd, type PrivateContainerd } from '../helpers/containerd.ts';
import { sha256, tarFiles } from '../helpers/oci-layout.ts';
import { buildSampleImages, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

describe('containerd (ctr) pulls from Slipway', () => {
  let containerd: PrivateContainerd;
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;

  beforeAll(async () => {
    containerd = await startContainerd();
    workspace = await ContainersWorkspace.create('slipway-e2e-ctr-');
    images = await buildSampleImages(workspace, 'ctr');
    slipway = await startSlipway();
    await workspace.skopeo([
      'copy',
      '--dest-tls-verify=false',
      images.single.ref,
      `docker://${slipway.host}/team/app:1`,
    ]);
    await workspace.skopeo([
      'copy',
      '--all',
      '--dest-tls-verify=false',
      images.multi.ref,
      `docker://${slipway.host}/team/multi:1`,
    ]);
  });
  afterAll(async () => {
    await containerd?.stop();
    await slipway?.stop();
    await workspace?.remove();
  });

  const contentOf = async (digest: string) => (await containerd.ctr(['content', 'get', digest])).stdoutBytes;

  it('ctr images pull --plain-http fetches the pushed image: ctr images ls shows its digest, content is byte-exact', async () => {
    const ref = `${slipway.host}/team/app:1`;
    await containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', ref]);

    const listed = parseCtrImages((await containerd.ctr(['images', 'ls'])).stdout).find(
      (image) => image.ref === ref,
    );
    expect(listed, `${ref} in ctr images ls`).toBeDefined();
    expect(listed!.digest).toBe(images.single.digest);
    expect(listed!.type).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(listed!.platforms).toEqual(['linux/amd64']);

    const files = new Map<string, Buffer>();
    for (const digest of await images.single.layout.reachable(images.single.digest)) {
      const content = await contentOf(digest);
      expect(sha256(content), `${digest} in containerd's content store`).toBe(digest);
      expect(content.equals(await images.single.layout.blob(digest))).toBe(true);
    }
    for (const layer of images.single.manifest.layers!) {
      for (const [path, content] of tarFiles(await contentOf(layer.digest))) files.set(`/${path}`, content);
    }
    for (const [path, content] of Object.entries(images.single.files)) {
      expect(files.get(path)?.equals(content), `${path} as containerd pulled it`).toBe(true);
    }
    // Unpacked into the native snapshotter (the pull would have failed otherwise): one snapshot per layer.
    const snapshots = (await containerd.ctr(['snapshots', '--snapshotter', 'native', 'ls'])).stdout;
    expect(snapshots.trim().split('\n').length - 1).toBeGreaterThanOrEqual(
      images.single.manifest.layers!.length,
    );
  });

  it('ctr images pull --all-platforms fetches the multi-arch index and every platform image', async () => {
    const ref = `${slipway.host}/team/multi:1`;
    await containerd.ctr([
      'images',
      'pull',
      '--plain-http',
      '--all-platforms',
      '--snapshotter',
      'native',
      ref,
    ]);

    const listed = parseCtrImages((await containerd.ctr(['images', 'ls'])).stdout).find(
      (image) => image.ref === ref,
    );
    expect(listed, `${ref} in ctr images ls`).toBeDefined();
    expect(listed!.digest).toBe(images.multi.digest);
    expect(listed!.type).toBe('application/vnd.oci.image.index.v1+json');
    expect([...listed!.platforms].sort()).toEqual(['linux/amd64', 'linux/arm64/v8']);

    const inStore = new Set(
      (await containerd.ctr(['content', 'ls', '-q'])).stdout
        .trim()
        .split('\n')
        .map((line) => line.trim()),
    );
    for (const digest of await images.multi.layout.reachable(images.multi.digest)) {
      expect(inStore.has(digest), `${digest} fetched by ctr --all-platforms`).toBe(true);
      expect(sha256(await contentOf(digest))).toBe(digest);
    }
    for (const arch of ['amd64', 'arm64'] as const) {
      const child = images.multi.children[arch];
      const files = tarFiles(await contentOf(child.manifest.layers![0]!.digest));
      expect(files.get('arch.txt')?.toString('utf8')).toBe(child.files['/arch.txt']!.toString('utf8'));
    }
  });
});
