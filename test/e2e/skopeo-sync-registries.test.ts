import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.ts';
import { startDistribution, type TestDistribution } from '../helpers/distribution.ts';
import { credsOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { buildSampleImages, type SampleImages } from '../helpers/sample-images.ts';
import type { TestSlipway } from '../helpers/slipway.ts';

const hostOf = (url: string) => new URL(url).host;

/**
 * What operators' cron jobs do, registry to registry: `skopeo sync` from a Distribution upstream into
 * Slipway (a YAML file naming the upstream, pushed with a robot's token), and from Slipway to another
 * Distribution. Digests must survive both ways, multi-arch indexes included.
 */
describe('skopeo sync between registries, into and out of Slipway', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let upstream: TestDistribution;
  let backup: TestDistribution;
  let slipway: TestSlipway;
  /** In front of Slipway, to see what a sync pushes. */
  let slipwayProxy: CountingProxy;
  let robot: Login;
  /** What the upstream's `team/tools` holds; the YAML file's regex selects the v1 tags. */
  let upstreamTags: Record<string, string>;
  let selectedTags: Record<string, string>;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-registry-sync-');
    [images, upstream, backup, slipway] = await Promise.all([
      buildSampleImages(workspace, 'regsync'),
      startDistribution(),
      startDistribution(),
      startSecuredSlipway(),
    ]);
    slipwayProxy = await startCountingProxy(slipway.url);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/tools');
    robot = await fixtures.robot('acme', 'sync');
    await fixtures.grant('acme/tools', { user: robot.username }, 'write');

    const toUpstream = (args: string[], tag: string) =>
      workspace.skopeo([
        'copy',
        '--preserve-digests',
        '--dest-tls-verify=false',
        ...args,
        `docker://${hostOf(upstream.url)}/team/tools:${tag}`,
      ]);
    await toUpstream([images.single.ref], 'v1.0');
    await toUpstream([images.single.ref], 'v1.1');
    await toUpstream(['--all', images.multi.ref], 'v1.2');
    await toUpstream([images.single.ref], 'v2.0');
    await toUpstream([images.single.ref], 'latest');
    // One of the index's children under a tag of its own: a single image that shares its blobs.
    const amd64 = images.multi.children.amd64.digest;
    await workspace.skopeo([
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${hostOf(upstream.url)}/team/tools@${amd64}`,
      `docker://${hostOf(upstream.url)}/team/tools:v1.3`,
    ]);
    selectedTags = {
      'v1.0': images.single.digest,
      'v1.1': images.single.digest,
      'v1.2': images.multi.digest,
      'v1.3': amd64,
    };
    upstreamTags = { ...selectedTags, 'v2.0': images.single.digest, latest: images.single.digest };
  });

  afterAll(async () => {
    await slipwayProxy?.stop();
    await slipway?.stop();
    await upstream?.stop();
    await backup?.stop();
    await workspace?.remove();
  });

  async function tagsOf(repository: string, creds: string[] = []): Promise<string[]> {
    const { stdout } = await workspace.skopeo([
      'list-tags',
      '--tls-verify=false',
      ...creds,
      `docker://${repository}`,
    ]);
    return [...(JSON.parse(stdout) as { Tags: string[] }).Tags].sort();
  }

  /** The digest of the manifest (or index) `reference` names, as its registry serves it. */
  async function digestOf(reference: string, creds: string[] = []): Promise<string> {
    const { stdoutBytes } = await workspace.skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...creds,
      `docker://${reference}`,
    ]);
    return sha256(stdoutBytes);
  }

  /** `repo_push` events recorded for the repository: one per push that moved a tag. */
  async function tagPushEvents(repository: string): Promise<number> {
    const { rows } = await slipway.services.db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM events WHERE kind = 'repo_push' AND repository = $1`,
      [repository],
    );
    return Number(rows[0]!.n);
  }

  async function syncFromUpstreamYaml(): Promise<void> {
    const file = workspace.path('sync.yaml');
    await writeFile(
      file,
      [
        `${hostOf(upstream.url)}:`,
        '  tls-verify: false',
        '  images-by-tag-regex:',
        '    team/tools: ^v1\\.',
        '',
      ].join('\n'),
    );
    await workspace.skopeo([
      'sync',
      '--all',
      '--src',
      'yaml',
      '--dest',
      'docker',
      '--dest-tls-verify=false',
      '--dest-creds',
      credsOf(robot),
      file,
      `${hostOf(slipwayProxy.url)}/acme`,
    ]);
  }

  it('syncs the tags a YAML file selects from a Distribution upstream into Slipway, digests kept', async () => {
    const robotCreds = ['--creds', credsOf(robot)];
    expect(await tagsOf(`${hostOf(upstream.url)}/team/tools`)).toEqual(Object.keys(upstreamTags).sort());

    await syncFromUpstreamYaml();

    expect(await tagsOf(`${slipway.host}/acme/tools`, robotCreds)).toEqual(Object.keys(selectedTags).sort());
    for (const [tag, digest] of Object.entries(selectedTags)) {
      expect(await digestOf(`${slipway.host}/acme/tools:${tag}`, robotCreds), `acme/tools:${tag}`).toBe(
        digest,
      );
    }
    // The index came whole: both platforms' images are there by digest.
    for (const { digest } of Object.values(images.multi.children)) {
      expect(await digestOf(`${slipway.host}/acme/tools@${digest}`, robotCreds)).toBe(digest);
    }
    expect(
      slipwayProxy.count((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')),
    ).toBeGreaterThan(0);
    expect(await tagPushEvents('acme/tools')).toBeGreaterThan(0);
  });

  it('a second run of the same file uploads nothing and moves no tag', async () => {
    const robotCreds = ['--creds', credsOf(robot)];
    const pushesBefore = await tagPushEvents('acme/tools');
    const before = slipwayProxy.requests.length;
    await syncFromUpstreamYaml();
    const secondRun = slipwayProxy.requests.slice(before);

    expect(secondRun.filter((r) => r.url.includes('/blobs/uploads/'))).toEqual([]);
    // skopeo skips an image already there, but PUTs an index again: to the digest its tag is at already.
    expect(await tagPushEvents('acme/tools')).toBe(pushesBefore);
    expect(await tagsOf(`${slipway.host}/acme/tools`, robotCreds)).toEqual(Object.keys(selectedTags).sort());
    for (const [tag, digest] of Object.entries(selectedTags)) {
      expect(await digestOf(`${slipway.host}/acme/tools:${tag}`, robotCreds), `acme/tools:${tag}`).toBe(
        digest,
      );
    }
  });

  it('syncs a Slipway repository to another Distribution, digests kept (multi-arch included)', async () => {
    await workspace.skopeo([
      'sync',
      '--all',
      '--src',
      'docker',
      '--dest',
      'docker',
      '--src-tls-verify=false',
      '--src-creds',
      credsOf(robot),
      '--dest-tls-verify=false',
      `${slipway.host}/acme/tools`,
      `${hostOf(backup.url)}/backup`,
    ]);

    expect(await tagsOf(`${hostOf(backup.url)}/backup/tools`)).toEqual(Object.keys(selectedTags).sort());
    for (const [tag, digest] of Object.entries(selectedTags)) {
      expect(await digestOf(`${hostOf(backup.url)}/backup/tools:${tag}`), `backup/tools:${tag}`).toBe(digest);
    }
    for (const { digest } of Object.values(images.multi.children)) {
      expect(await digestOf(`${hostOf(backup.url)}/backup/tools@${digest}`)).toBe(digest);
    }
  });
});
