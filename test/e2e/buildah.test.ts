import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { sha256, tarFiles } from '../helpers/oci-layout.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

interface BuildahImage {
  FromImageID: string;
  FromImageDigest: string;
  OCIv1: {
    architecture: string;
    os: string;
    variant?: string;
    config: { Env?: string[]; Cmd?: string[]; Labels?: Record<string, string> };
    rootfs: { diff_ids: string[] };
  };
}

describe('buildah push and pull through Slipway', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-buildah-');
    images = await buildSampleImages(workspace, 'buildah');
    slipway = await startSlipway();
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const inspectImage = async (image: string, storage: string) =>
    JSON.parse(
      (await workspace.buildah(['inspect', '--type', 'image', image], storage)).stdout,
    ) as BuildahImage;
  const pull = async (image: string, storage: string, ...flags: string[]) => {
    const { stdout } = await workspace.buildah(
      ['pull', '--tls-verify=false', '--signature-policy', workspace.policy, ...flags, image],
      storage,
    );
    return stdout.trim().split('\n').pop()!;
  };

  it('buildah pull into a fresh storage gets the image buildah pushed: digest, config and files', async () => {
    const ref = `${slipway.host}/team/built:1`;
    const digestFile = workspace.path('built.digest');
    await workspace.buildah([
      'push',
      '--tls-verify=false',
      '--signature-policy',
      workspace.policy,
      '--digestfile',
      digestFile,
      `localhost/${images.single.storageName}`,
      `docker://${ref}`,
    ]);
    const pushedDigest = (await readFile(digestFile, 'utf8')).trim();
    const raw = (await workspace.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]))
      .stdoutBytes;
    expect(sha256(raw)).toBe(pushedDigest);

    const source = await inspectImage(`localhost/${images.single.storageName}`, 'main');
    const pulledId = await pull(ref, 'fresh');
    expect(`sha256:${pulledId}`).toBe(`sha256:${source.FromImageID}`);

    const pulled = await inspectImage(ref, 'fresh');
    expect(pulled.FromImageID).toBe(source.FromImageID);
    expect(pulled.FromImageDigest).toBe(pushedDigest);
    expect(pulled.OCIv1.rootfs.diff_ids).toEqual(source.OCIv1.rootfs.diff_ids);
    expect(pulled.OCIv1.rootfs.diff_ids).toHaveLength(2);
    expect(pulled.OCIv1.architecture).toBe('amd64');
    expect(pulled.OCIv1.config.Env).toContain('GREETING=ahoy');
    expect(pulled.OCIv1.config.Cmd).toEqual(['/app/hello']);
    expect(pulled.OCIv1.config.Labels?.['org.example.suite']).toBe('slipway-e2e');

    // The files: export what was pulled and read its layers.
    const out = workspace.path('out', 'built');
    await workspace.buildah(['push', '--signature-policy', workspace.policy, ref, `oci:${out}:1`], 'fresh');
    const exported = await describeLayout(out, '1');
    const files = new Map<string, Buffer>();
    for (const layer of exported.manifest.layers ?? []) {
      for (const [path, content] of tarFiles(await exported.layout.blob(layer.digest)))
        files.set(`/${path}`, content);
    }
    for (const [path, content] of Object.entries(images.single.files)) {
      expect(files.get(path)?.equals(content), `${path} in the pulled image`).toBe(true);
    }
  });

  it('buildah manifest push --all of a multi-arch list, then buildah pull --arch picks each platform', async () => {
    const ref = `${slipway.host}/team/built-multi:1`;
    const digestFile = workspace.path('built-multi.digest');
    await workspace.buildah([
      'manifest',
      'push',
      '--all',
      '--tls-verify=false',
      '--signature-policy',
      workspace.policy,
      '--digestfile',
      digestFile,
      'localhost/buildah-multi',
      `docker://${ref}`,
    ]);
    const pushedDigest = (await readFile(digestFile, 'utf8')).trim();
    const raw = (await workspace.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]))
      .stdoutBytes;
    expect(sha256(raw)).toBe(pushedDigest);
    const list = JSON.parse(raw.toString('utf8')) as {
      manifests: Array<{ platform: { architecture: string } }>;
    };
    expect(list.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);

    for (const arch of ['arm64', 'amd64'] as const) {
      const expected = images.multi.children[arch].manifest.config!.digest;
      const pulledId = await pull(
        ref,
        `fresh-${arch}`,
        '--arch',
        arch,
        ...(arch === 'arm64' ? ['--variant', 'v8'] : []),
      );
      expect(`sha256:${pulledId}`, `image ID pulled for ${arch}`).toBe(expected);
      const pulled = await inspectImage(ref, `fresh-${arch}`);
      expect(pulled.OCIv1.architecture).toBe(arch);
    }
  });
});
