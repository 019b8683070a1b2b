import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { sha256, tarFiles } from '../helpers/oci-layout.ts';
import { metric } from '../helpers/registry-http.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';
import { runRaw } from '../helpers/tools.ts';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json';
const anyManifest = [
  ociManifest,
  ociIndex,
  dockerManifest,
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

describe('skopeo against Slipway', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-skopeo-');
    images = await buildSampleImages(workspace, 'skopeo');
    slipway = await startSlipway();
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const at = (repositoryAndReference: string) => `docker://${slipway.host}/${repositoryAndReference}`;
  const copy = (...args: string[]) =>
    workspace.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args]);
  const inspectRaw = async (ref: string) =>
    (await workspace.skopeo(['inspect', '--raw', '--tls-verify=false', ref])).stdoutBytes;
  const listTags = async (repository: string) =>
    (
      JSON.parse((await workspace.skopeo(['list-tags', '--tls-verify=false', at(repository)])).stdout) as {
        Tags: string[];
      }
    ).Tags;
  const digestFile = async (name: string) => (await readFile(workspace.path(name), 'utf8')).trim();

  it('copies a single-arch image in from an oci: layout and back out with identical digests and bytes', async () => {
    const { single } = images;
    await copy('--digestfile', workspace.path('single-in.digest'), single.ref, at('team/app:1'));
    expect(await digestFile('single-in.digest')).toBe(single.digest);
    expect((await inspectRaw(at('team/app:1'))).toString('utf8')).toBe(single.raw.toString('utf8'));

    const head = await fetch(`${slipway.url}/v2/team/app/manifests/1`, {
      method: 'HEAD',
      headers: { Accept: anyManifest },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(single.digest);
    expect(head.headers.get('content-type')).toBe(ociManifest);

    const out = workspace.path('out', 'single');
    await copy(at('team/app:1'), `oci:${out}:1`);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(single.digest);
    expect(pulled.raw.equals(single.raw)).toBe(true);
    const expected = await single.layout.reachable(single.digest);
    expect(expected.size).toBe(4); // manifest, config, two layers
    for (const digest of expected) {
      expect(sha256(await pulled.layout.blob(digest)), `blob ${digest} pulled back`).toBe(digest);
    }
    // What a user cares about in the end: the files in the image came back.
    const files = new Map<string, Buffer>();
    for (const layer of pulled.manifest.layers ?? []) {
      for (const [path, content] of tarFiles(await pulled.layout.blob(layer.digest)))
        files.set(`/${path}`, content);
    }
    for (const [path, content] of Object.entries(single.files)) {
      expect(files.get(path)?.equals(content), `${path} in the pulled image`).toBe(true);
    }
  });

  it('copies a multi-arch index with --all in and out, keeping the index and every image byte-identical', async () => {
    const { multi } = images;
    await copy('--all', '--digestfile', workspace.path('multi-in.digest'), multi.ref, at('team/multi:1'));
    expect(await digestFile('multi-in.digest')).toBe(multi.digest);
    expect((await inspectRaw(at('team/multi:1'))).toString('utf8')).toBe(multi.raw.toString('utf8'));
    for (const child of Object.values(multi.children)) {
      expect(sha256(await inspectRaw(at(`team/multi@${child.digest}`)))).toBe(child.digest);
    }

    // A client on arm64 gets the arm64 image's layers, one on amd64 the amd64 one's.
    for (const arch of ['arm64', 'amd64'] as const) {
      const inspected = JSON.parse(
        (
          await workspace.skopeo([
            '--override-arch',
            arch,
            'inspect',
            '--tls-verify=false',
            at('team/multi:1'),
          ])
        ).stdout,
      ) as { Architecture: string; Layers: string[] };
      expect(inspected.Architecture).toBe(arch);
      expect(inspected.Layers).toEqual(multi.children[arch].manifest.layers?.map((l) => l.digest));
    }

    const out = workspace.path('out', 'multi');
    await copy('--all', at('team/multi:1'), `oci:${out}:1`);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(multi.digest);
    expect(pulled.raw.equals(multi.raw)).toBe(true);
    const expected = await multi.layout.reachable(multi.digest);
    expect(expected.size).toBe(7); // index, 2 × (manifest, config, layer)
    for (const digest of expected) {
      expect(sha256(await pulled.layout.blob(digest)), `blob ${digest} pulled back`).toBe(digest);
    }
    for (const arch of ['amd64', 'arm64'] as const) {
      const layer = multi.children[arch].manifest.layers![0]!;
      const files = tarFiles(await pulled.layout.blob(layer.digest));
      expect(files.get('arch.txt')?.toString('utf8')).toBe(
        multi.children[arch].files['/arch.txt']!.toString('utf8'),
      );
    }
  });

  it('copies an image in from a docker-archive: and back out with identical digests', async () => {
    const archive = workspace.path('single.tar');
    await workspace.skopeo(['copy', images.single.ref, `docker-archive:${archive}:team/app:archived`]);
    const sourceRaw = (await workspace.skopeo(['inspect', '--raw', `docker-archive:${archive}`])).stdoutBytes;
    const source = JSON.parse(sourceRaw.toString('utf8')) as {
      mediaType: string;
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    expect(source.mediaType).toBe(dockerManifest);

    // --preserve-digests: skopeo must not recompress the archive's plain-tar layers, so the manifest
    // the registry receives is the archive's, and its digest the source's.
    await copy(
      '--preserve-digests',
      '--digestfile',
      workspace.path('archive-in.digest'),
      `docker-archive:${archive}`,
      at('team/archived:1'),
    );
    expect(await digestFile('archive-in.digest')).toBe(sha256(sourceRaw));
    expect((await inspectRaw(at('team/archived:1'))).toString('utf8')).toBe(sourceRaw.toString('utf8'));
    const head = await fetch(`${slipway.url}/v2/team/archived/manifests/1`, {
      method: 'HEAD',
      headers: { Accept: anyManifest },
    });
    expect(head.headers.get('content-type')).toBe(dockerManifest);
    expect(head.headers.get('docker-content-digest')).toBe(sha256(sourceRaw));

    const out = workspace.path('out', 'archived');
    await copy('--preserve-digests', at('team/archived:1'), `oci:${out}:1`);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(sha256(sourceRaw));
    expect(pulled.raw.equals(sourceRaw)).toBe(true);
    expect(source.config.digest).toBe(images.single.manifest.config?.digest);
    const files = new Map<string, Buffer>();
    for (const digest of [source.config.digest, ...source.layers.map((l) => l.digest)]) {
      const blob = await pulled.layout.blob(digest);
      expect(sha256(blob)).toBe(digest);
      if (digest !== source.config.digest)
        for (const [path, content] of tarFiles(blob)) files.set(`/${path}`, content);
    }
    for (const [path, content] of Object.entries(images.single.files)) {
      expect(files.get(path)?.equals(content), `${path} in the image pulled back`).toBe(true);
    }
  });

  it('skopeo inspect reports the pushed digest, tags, platform, config and layers', async () => {
    const { single } = images;
    await copy(single.ref, at('team/inspect:1'));
    await copy(single.ref, at('team/inspect:latest'));
    const inspected = JSON.parse(
      (await workspace.skopeo(['inspect', '--tls-verify=false', at('team/inspect:1')])).stdout,
    ) as {
      Name: string;
      Digest: string;
      RepoTags: string[];
      Architecture: string;
      Os: string;
      Layers: string[];
      Labels: Record<string, string>;
      Env: string[];
    };
    expect(inspected.Name).toBe(`${slipway.host}/team/inspect`);
    expect(inspected.Digest).toBe(single.digest);
    expect([...inspected.RepoTags].sort()).toEqual(['1', 'latest']);
    expect(inspected.Architecture).toBe('amd64');
    expect(inspected.Os).toBe('linux');
    expect(inspected.Layers).toEqual(single.manifest.layers?.map((l) => l.digest));
    expect(inspected.Labels['org.example.suite']).toBe('slipway-e2e');
    expect(inspected.Env).toContain('GREETING=ahoy');

    const config = (
      await workspace.skopeo(['inspect', '--config', '--raw', '--tls-verify=false', at('team/inspect:1')])
    ).stdoutBytes;
    expect(sha256(config)).toBe(single.manifest.config?.digest);
  });

  it('skopeo list-tags lists every tag of a repository, and fails for one that does not exist', async () => {
    for (const tag of ['1', '1.0', 'latest']) await copy(images.single.ref, at(`team/tags:${tag}`));
    await copy('--all', images.multi.ref, at('team/tags:multi'));
    expect([...(await listTags('team/tags'))].sort()).toEqual(['1', '1.0', 'latest', 'multi']);

    const missing = await runRaw(
      'skopeo',
      ['--policy', workspace.policy, 'list-tags', '--tls-verify=false', at('team/never-pushed')],
      { env: workspace.env },
    );
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NAME_UNKNOWN|not known|404|not found/i);
  });

  it('skopeo delete removes the image: its manifest GETs are 404 and its tags are gone', async () => {
    const { single, multi } = images;
    await copy(single.ref, at('team/del:1'));
    await copy(single.ref, at('team/del:same-image'));
    await copy('--all', multi.ref, at('team/del:keep'));
    expect([...(await listTags('team/del'))].sort()).toEqual(['1', 'keep', 'same-image']);

    await workspace.skopeo(['delete', '--tls-verify=false', at('team/del:1')]);

    for (const reference of ['1', 'same-image', single.digest]) {
      for (const method of ['GET', 'HEAD']) {
        const response = await fetch(`${slipway.url}/v2/team/del/manifests/${reference}`, {
          method,
          headers: { Accept: anyManifest },
        });
        expect(response.status, `${method} manifests/${reference} after skopeo delete`).toBe(404);
        if (method === 'GET')
          expect(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
            'MANIFEST_UNKNOWN',
          );
      }
    }
    // skopeo delete deletes the manifest by digest, so every tag of that image goes; others stay.
    expect(await listTags('team/del')).toEqual(['keep']);
    const gone = await runRaw(
      'skopeo',
      ['--policy', workspace.policy, 'inspect', '--tls-verify=false', at('team/del:1')],
      {
        env: workspace.env,
      },
    );
    expect(gone.code).not.toBe(0);
    expect((await inspectRaw(at('team/del:keep'))).equals(multi.raw)).toBe(true);
  });

  it('counts the blob bytes sent to a pulling client in slipway_blob_bytes_served_total', async () => {
    const { single } = images;
    await copy(single.ref, at('team/served:1'));
    const blobBytes = [single.manifest.config!, ...single.manifest.layers!].reduce(
      (sum, d) => sum + d.size,
      0,
    );
    const before = await metric(slipway.url, 'slipway_blob_bytes_served_total');
    await copy(at('team/served:1'), `oci:${workspace.path('out', 'served')}:1`);
    const after = await metric(slipway.url, 'slipway_blob_bytes_served_total');
    // skopeo GETs the config and each layer once, whole.
    expect(after - before).toBe(blobBytes);
  });
});
