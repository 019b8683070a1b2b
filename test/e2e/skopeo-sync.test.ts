import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

/**
 * What an operator's mirroring job does: `skopeo sync` a repository from Slipway to a directory (say,
 * to carry it across an air gap), then from that directory into another Slipway.
 */
describe('skopeo sync from Slipway to a directory and back into another Slipway', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let source: TestSlipway;
  let mirror: TestSlipway;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-sync-');
    images = await buildSampleImages(workspace, 'sync');
    [source, mirror] = await Promise.all([startSlipway(), startSlipway()]);
  });
  afterAll(async () => {
    await source?.stop();
    await mirror?.stop();
    await workspace?.remove();
  });

  it('keeps every tag, and every tag keeps its digest (multi-arch included)', async () => {
    const push = (args: string[], tag: string) =>
      workspace.skopeo([
        'copy',
        '--dest-tls-verify=false',
        ...args,
        `docker://${source.host}/team/sync:${tag}`,
      ]);
    await push([images.single.ref], '1');
    await push([images.single.ref], 'latest');
    await push(['--all', images.multi.ref], 'multi');
    const expected: Record<string, string> = {
      '1': images.single.digest,
      latest: images.single.digest,
      multi: images.multi.digest,
    };

    const dir = workspace.path('out', 'sync');
    await workspace.skopeo([
      'sync',
      '--all',
      '--src',
      'docker',
      '--dest',
      'dir',
      '--src-tls-verify=false',
      `${source.host}/team/sync`,
      dir,
    ]);
    expect((await readdir(dir)).sort()).toEqual(['sync:1', 'sync:latest', 'sync:multi']);

    await workspace.skopeo([
      'sync',
      '--all',
      '--src',
      'dir',
      '--dest',
      'docker',
      '--dest-tls-verify=false',
      dir,
      `${mirror.host}/mirror`,
    ]);

    const listed = JSON.parse(
      (await workspace.skopeo(['list-tags', '--tls-verify=false', `docker://${mirror.host}/mirror/sync`]))
        .stdout,
    ) as { Tags: string[] };
    expect([...listed.Tags].sort()).toEqual(['1', 'latest', 'multi']);
    for (const [tag, digest] of Object.entries(expected)) {
      const raw = (
        await workspace.skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${mirror.host}/mirror/sync:${tag}`,
        ])
      ).stdoutBytes;
      expect(sha256(raw), `digest of mirror/sync:${tag}`).toBe(digest);
    }

    // And the mirrored multi-arch image pulls whole and byte-exact.
    const out = workspace.path('out', 'mirrored-multi');
    await workspace.skopeo([
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${mirror.host}/mirror/sync:multi`,
      `oci:${out}:1`,
    ]);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(images.multi.digest);
    for (const digest of await images.multi.layout.reachable(images.multi.digest)) {
      expect(sha256(await pulled.layout.blob(digest)), `blob ${digest} from the mirror`).toBe(digest);
    }
  });
});
