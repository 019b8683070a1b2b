import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest } from '../../src/registry/digest.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { parseCtrImages, startContainerd, type PrivateContainerd } from '../helpers/containerd.ts';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.ts';
import { startDistribution, type TestDistribution } from '../helpers/distribution.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

/**
 * The pull-through cache with real clients: images exist only in a Distribution upstream (reached
 * through a proxy that counts requests), and containerd (a `hosts.toml` mirror, as on a cluster node)
 * and skopeo (a `registries.conf` mirror, as CRI-O and podman use) pull them through Slipway.
 * `edge` serves the made-up registry host `registry.example.test` (containerd's `?ns=`), `dockerhub`
 * stands in for Docker Hub (`docker.io`).
 */
describe('pull-through cache with containerd and skopeo', () => {
  const edgeHost = 'registry.example.test';
  let containerd: PrivateContainerd;
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let registriesConf: string;

  beforeAll(async () => {
    [containerd, workspace, upstream] = await Promise.all([
      startContainerd(),
      ContainersWorkspace.create('slipway-e2e-pull-through-'),
      startDistribution(),
    ]);
    images = await buildSampleImages(workspace, 'pt');
    const upstreamHost = upstream.url.replace(/^http:\/\//, '');
    await workspace.skopeo([
      'copy',
      '--dest-tls-verify=false',
      images.single.ref,
      `docker://${upstreamHost}/library/app:1`,
    ]);
    await workspace.skopeo([
      'copy',
      '--all',
      '--dest-tls-verify=false',
      images.multi.ref,
      `docker://${upstreamHost}/library/multi:1`,
    ]);
    counter = await startCountingProxy(upstream.url);
    slipway = await startSlipway({
      config: {
        proxy: {
          upstreams: [
            { name: 'edge', url: counter.url, hosts: [edgeHost] },
            { name: 'dockerhub', url: counter.url, hosts: ['docker.io'] },
          ],
        },
      },
    });

    // containerd: Slipway as the only mirror of the made-up host (the host itself does not exist).
    await mkdir(workspace.path('certs.d', edgeHost), { recursive: true });
    await writeFile(
      workspace.path('certs.d', edgeHost, 'hosts.toml'),
      [
        `server = "https://${edgeHost}"`,
        '',
        `[host."http://${slipway.host}"]`,
        '  capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    );
    // skopeo: containers-registries.conf v2 with Slipway's namespaces as the mirrors.
    registriesConf = workspace.path('registries-mirror.conf');
    const mirrorOf = (prefix: string, namespace: string) => [
      '[[registry]]',
      `prefix = "${prefix}"`,
      `location = "${prefix}"`,
      '[[registry.mirror]]',
      `location = "${slipway.host}/${namespace}"`,
      'insecure = true',
      'pull-from-mirror = "all"',
      '',
    ];
    await writeFile(
      registriesConf,
      [
        'unqualified-search-registries = []',
        'short-name-mode = "disabled"',
        '',
        ...mirrorOf('docker.io', 'dockerhub'),
        ...mirrorOf(edgeHost, 'edge'),
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await containerd?.stop();
    await slipway?.stop();
    await counter?.stop();
    await upstream?.stop();
    await workspace?.remove();
  });

  const upstreamRequests = (method: string, path: string) =>
    counter.count((r) => r.method === method && r.url.split('?')[0] === path);

  async function slipwayManifest(path: string) {
    const response = await fetch(`${slipway.url}${path}`, {
      headers: {
        Accept: [
          'application/vnd.oci.image.manifest.v1+json',
          'application/vnd.oci.image.index.v1+json',
          'application/vnd.docker.distribution.manifest.v2+json',
          'application/vnd.docker.distribution.manifest.list.v2+json',
        ].join(', '),
      },
    });
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, body };
  }

  const skopeoThroughMirror = (args: readonly string[]) =>
    workspace.skopeo(['--registries-conf', registriesConf, ...args]);

  it('containerd with a hosts.toml mirror pulls an upstream-only image through Slipway (?ns=), which then holds it', async () => {
    expect(upstreamRequests('GET', '/v2/library/app/manifests/1')).toBe(0);
    const ref = `${edgeHost}/library/app:1`;
    await containerd.ctr([
      'images',
      'pull',
      '--hosts-dir',
      workspace.path('certs.d'),
      '--snapshotter',
      'native',
      ref,
    ]);

    const listed = parseCtrImages((await containerd.ctr(['images', 'ls'])).stdout).find(
      (image) => image.ref === ref,
    );
    expect(listed, `${ref} in ctr images ls`).toBeDefined();
    expect(listed!.digest).toBe(images.single.digest);
    for (const digest of await images.single.layout.reachable(images.single.digest)) {
      const content = (await containerd.ctr(['content', 'get', digest])).stdoutBytes;
      expect(sha256(content), `${digest} in containerd's content store`).toBe(digest);
    }

    // The upstream was asked, through the cache (containerd never reached the made-up host).
    expect(upstreamRequests('GET', '/v2/library/app/manifests/1')).toBe(1);
    for (const layer of images.single.manifest.layers!) {
      expect(upstreamRequests('GET', `/v2/library/app/blobs/${layer.digest}`)).toBe(1);
    }
    const cached = await slipwayManifest('/v2/edge/library/app/manifests/1');
    expect(cached.status).toBe(200);
    expect(cached.headers.get('x-cache')).toBe('HIT');
    expect(cached.headers.get('docker-content-digest')).toBe(images.single.digest);
    expect(cached.body.equals(images.single.raw)).toBe(true);
    expect(upstreamRequests('GET', '/v2/library/app/manifests/1')).toBe(1);
  });

  it('skopeo with a registries.conf mirror copies docker.io/library/app through Slipway, byte-exact', async () => {
    const out = workspace.path('out', 'skopeo-app');
    await skopeoThroughMirror(['copy', 'docker://docker.io/library/app:1', `oci:${out}:1`]);

    const copied = await describeLayout(out, '1');
    expect(copied.digest).toBe(images.single.digest);
    expect(copied.raw.equals(images.single.raw)).toBe(true);
    for (const digest of await copied.layout.reachable(copied.digest)) {
      expect(sha256(await copied.layout.blob(digest))).toBe(digest);
    }

    // Slipway holds it as dockerhub/library/app, and a second copy is served from the cache.
    const cached = await slipwayManifest('/v2/dockerhub/library/app/manifests/1');
    expect(cached.headers.get('x-cache')).toBe('HIT');
    expect(cached.headers.get('docker-content-digest')).toBe(images.single.digest);
    const manifestGets = upstreamRequests('GET', '/v2/library/app/manifests/1');
    await skopeoThroughMirror(['copy', 'docker://docker.io/library/app:1', `oci:${out}-again:1`]);
    expect((await describeLayout(`${out}-again`, '1')).digest).toBe(images.single.digest);
    expect(upstreamRequests('GET', '/v2/library/app/manifests/1')).toBe(manifestGets);
  });

  it('skopeo copy --all pulls a multi-arch index through Slipway and keeps its digest and children', async () => {
    const out = workspace.path('out', 'skopeo-multi');
    await skopeoThroughMirror(['copy', '--all', `docker://${edgeHost}/library/multi:1`, `oci:${out}:1`]);

    const copied = await describeLayout(out, '1');
    expect(copied.digest).toBe(images.multi.digest);
    expect(copied.raw.equals(images.multi.raw)).toBe(true);
    for (const digest of await images.multi.layout.reachable(images.multi.digest)) {
      expect(sha256(await copied.layout.blob(digest)), `${digest} copied with --all`).toBe(digest);
    }

    const cached = await slipwayManifest('/v2/edge/library/multi/manifests/1');
    expect(cached.headers.get('x-cache')).toBe('HIT');
    expect(cached.headers.get('docker-content-digest')).toBe(images.multi.digest);
    expect(computeDigest(cached.body)).toBe(images.multi.digest);
    for (const arch of ['amd64', 'arm64'] as const) {
      const child = await slipwayManifest(
        `/v2/edge/library/multi/manifests/${images.multi.children[arch].digest}`,
      );
      expect(child.status, `${arch} child cached`).toBe(200);
      expect(child.headers.get('x-cache')).toBe('HIT');
    }
    expect(upstreamRequests('GET', '/v2/library/multi/manifests/1')).toBe(1);
  });
});
