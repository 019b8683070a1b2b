import { randomBytes } from 'node:crypto';
import type { ContainersWorkspace } from './containers.ts';
import { OciLayout, type ManifestJson } from './oci-layout.ts';

export interface SampleImage {
  /** `oci:DIR:TAG`, for skopeo. */
  ref: string;
  layout: OciLayout;
  tag: string;
  /** Digest of the image manifest (or of the index, for a multi-arch image). */
  digest: string;
  /** The manifest (or index) bytes exactly as in the layout. */
  raw: Buffer;
  manifest: ManifestJson;
}

export interface SampleImages {
  /** linux/amd64, two layers (a base layer and one on top), env, cmd and a label. */
  single: SampleImage & { files: Record<string, Buffer>; storageName: string };
  /** An OCI index of a linux/amd64 and a linux/arm64/v8 image with different files in each. */
  multi: SampleImage & {
    children: Record<
      'amd64' | 'arm64',
      { digest: string; manifest: ManifestJson; files: Record<string, Buffer> }
    >;
  };
}

/**
 * Builds the suite's small test images with buildah (from scratch, files made here with random bytes so
 * every run's digests are new) and exports them to OCI layouts under the workspace.
 */
export async function buildSampleImages(
  workspace: ContainersWorkspace,
  name = 'sample',
): Promise<SampleImages> {
  const nonce = randomBytes(8).toString('hex');
  const baseFiles = {
    '/etc/base-release': Buffer.from(`slipway e2e base ${nonce}\n`),
    '/data/base.bin': randomBytes(48 * 1024),
  };
  const appFiles = {
    '/app/hello.txt': Buffer.from(`hello from ${name} ${nonce}\n`),
    '/app/payload.bin': randomBytes(64 * 1024),
  };
  await workspace.build(`${name}-base`, { files: baseFiles });
  await workspace.build(`${name}-single`, {
    base: `${name}-base`,
    files: appFiles,
    env: ['GREETING=ahoy'],
    cmd: ['/app/hello'],
    labels: { 'org.example.suite': 'slipway-e2e' },
  });

  const amdFiles = { '/arch.txt': Buffer.from(`amd64 ${nonce}\n`), '/amd64.bin': randomBytes(32 * 1024) };
  const armFiles = { '/arch.txt': Buffer.from(`arm64 ${nonce}\n`), '/arm64.bin': randomBytes(32 * 1024) };
  await workspace.build(`${name}-amd64`, { files: amdFiles, arch: 'amd64' });
  await workspace.build(`${name}-arm64`, { files: armFiles, arch: 'arm64', variant: 'v8' });
  await workspace.manifestList(`${name}-multi`, [`${name}-amd64`, `${name}-arm64`]);

  const singleLayout = workspace.path('layouts', `${name}-single`);
  const multiLayout = workspace.path('layouts', `${name}-multi`);
  await workspace.exportToLayout(`${name}-single`, singleLayout, '1');
  await workspace.exportToLayout(`${name}-multi`, multiLayout, '1', { list: true });

  const single = await describeLayout(singleLayout, '1');
  const multi = await describeLayout(multiLayout, '1');
  const child = (arch: string) => {
    const found = multi.manifest.manifests?.find((d) => d.platform?.architecture === arch);
    if (!found) throw new Error(`the multi-arch index has no ${arch} image: ${multi.raw.toString('utf8')}`);
    return found.digest;
  };
  return {
    single: {
      ...single,
      files: { ...baseFiles, ...appFiles },
      storageName: `${name}-single`,
    },
    multi: {
      ...multi,
      children: {
        amd64: {
          digest: child('amd64'),
          manifest: await multi.layout.manifest(child('amd64')),
          files: amdFiles,
        },
        arm64: {
          digest: child('arm64'),
          manifest: await multi.layout.manifest(child('arm64')),
          files: armFiles,
        },
      },
    },
  };
}

export async function describeLayout(dir: string, tag: string): Promise<SampleImage> {
  const layout = new OciLayout(dir);
  const descriptor = await layout.descriptor(tag);
  const raw = await layout.blob(descriptor.digest);
  return {
    ref: `oci:${dir}:${tag}`,
    layout,
    tag,
    digest: descriptor.digest,
    raw,
    manifest: JSON.parse(raw.toString('utf8')) as ManifestJson,
  };
}
