import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { parseCtrImages, startContainerd, type PrivateContainerd } from '../helpers/containerd.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { credsOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { buildSampleImages, describeLayout, type SampleImages } from '../helpers/sample-images.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { describeCommand, runRaw } from '../helpers/tools.ts';

/** What containers/image and containerd print when the registry refuses them for lack of access. */
const authError = /unauthorized|authentication required|denied|401/i;
/** What they print when the token endpoint rejects the credentials themselves. */
const badCredentials = /invalid username\/password|failed to fetch oauth token: unexpected status: 401/i;
/** Refused for lack of access with credentials that were accepted, or because the credentials were not. */
type Refusal = 'access' | 'credentials';
const expectRefusalText = (stderr: string, because: Refusal, what: string) => {
  if (because === 'credentials') expect(stderr, what).toMatch(badCredentials);
  else {
    expect(stderr, what).toMatch(authError);
    expect(stderr, what).not.toMatch(badCredentials);
  }
};

describe('real registry clients against a gateway with authentication on', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;
  let fixtures: IdentityFixtures;
  let alice: Login;
  let bob: Login;
  /** acme+ci: write on acme/app. */
  let ciRobot: Login;
  /** acme+puller: read on acme/app, for a Kubernetes pull secret. */
  let pullerRobot: Login;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-auth-');
    [images, slipway] = await Promise.all([buildSampleImages(workspace, 'auth'), startSecuredSlipway()]);
    fixtures = await IdentityFixtures.of(slipway);
    alice = await fixtures.user('alice');
    bob = await fixtures.user('bob');
    await fixtures.organization('acme');
    await fixtures.organization('globex');
    await fixtures.repository('acme/app');
    await fixtures.repository('globex/app');
    ciRobot = await fixtures.robot('acme', 'ci');
    pullerRobot = await fixtures.robot('acme', 'puller');
    await fixtures.grant('acme/app', { user: ciRobot.username }, 'write');
    await fixtures.grant('acme/app', { user: pullerRobot.username }, 'read');

    // alice/app (private) and alice/public (public), pushed by alice through the token flow.
    for (const repository of ['alice/app', 'alice/public']) {
      await skopeoCopy('--dest-creds', credsOf(alice), images.single.ref, at(`${repository}:1`));
    }
    await fixtures.setVisibility('alice/public', 'public');
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const at = (repositoryAndReference: string) => `docker://${slipway.host}/${repositoryAndReference}`;
  const skopeoCopy = (...args: string[]) =>
    workspace.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args]);
  const skopeoRaw = (args: readonly string[]) => workspace.skopeoRaw(args);
  const tagsOf = async (repository: string) => {
    const listed = await workspace.skopeo([
      'list-tags',
      '--tls-verify=false',
      '--creds',
      credsOf(fixtures.rootLogin),
      at(repository),
    ]);
    return (JSON.parse(listed.stdout) as { Tags: string[] }).Tags.sort();
  };
  /** The digest of the manifest a reference names, read as `login` with `skopeo inspect --raw --creds`. */
  const manifestDigest = async (reference: string, login: Login) =>
    sha256(
      (
        await workspace.skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          credsOf(login),
          at(reference),
        ])
      ).stdoutBytes,
    );
  const expectRefused = (
    result: { code: number | null; stderr: string },
    what: string,
    command: readonly string[],
    because: Refusal = 'access',
  ) => {
    expect(result.code, `${what}: ${describeCommand('skopeo', command)}`).not.toBe(0);
    expectRefusalText(result.stderr, because, what);
  };
  const pullDigest = async (source: string, ...flags: string[]) => {
    const out = workspace.path('out', `pull-${Math.random().toString(36).slice(2)}`);
    await skopeoCopy(...flags, source, `oci:${out}:1`);
    return (await describeLayout(out, '1')).digest;
  };

  describe('skopeo', () => {
    it('--dest-creds pushes as the user and --src-creds pulls back the same image; others are refused', async () => {
      const digestFile = workspace.path('alice-app-2.digest');
      await skopeoCopy(
        '--dest-creds',
        credsOf(alice),
        '--digestfile',
        digestFile,
        images.single.ref,
        at('alice/app:2'),
      );
      expect((await readFile(digestFile, 'utf8')).trim()).toBe(images.single.digest);
      expect(await pullDigest(at('alice/app:2'), '--src-creds', credsOf(alice))).toBe(images.single.digest);

      const out = workspace.path('out', 'refused');
      for (const [who, flags, because] of [
        ['anonymous', [], 'access'],
        ['bob', ['--src-creds', credsOf(bob)], 'access'],
        ['a wrong password', ['--src-creds', `alice:not-alices-password`], 'credentials'],
      ] as const) {
        const command = ['copy', '--src-tls-verify=false', ...flags, at('alice/app:2'), `oci:${out}:1`];
        expectRefused(await skopeoRaw(command), `${who} pulling alice/app`, command, because);
      }
    });

    it('a robot pushes with its token to the repository it may write, and is refused on another organization’s', async () => {
      await skopeoCopy('--dest-creds', credsOf(ciRobot), images.single.ref, at('acme/app:1'));
      expect(await pullDigest(at('acme/app:1'), '--src-creds', credsOf(ciRobot))).toBe(images.single.digest);

      const command = [
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        credsOf(ciRobot),
        images.single.ref,
        at('globex/app:1'),
      ];
      expectRefused(await skopeoRaw(command), 'acme+ci pushing to globex/app', command);
      expect(await tagsOf('globex/app')).toEqual([]);
    });

    it('--creds inspects and deletes as the owner; an outsider or a wrong password cannot delete', async () => {
      await skopeoCopy('--all', '--dest-creds', credsOf(alice), images.multi.ref, at('alice/app:multi'));
      expect(await manifestDigest('alice/app:multi', alice)).toBe(images.multi.digest);

      for (const [who, creds, because] of [
        ['bob', credsOf(bob), 'access'],
        ['a wrong password', 'alice:not-alices-password', 'credentials'],
      ] as const) {
        const command = ['delete', '--tls-verify=false', '--creds', creds, at('alice/app:multi')];
        expectRefused(await skopeoRaw(command), `${who} deleting alice/app:multi`, command, because);
        expect(await manifestDigest('alice/app:multi', alice), `alice/app:multi after ${who}`).toBe(
          images.multi.digest,
        );
      }

      await workspace.skopeo([
        'delete',
        '--tls-verify=false',
        '--creds',
        credsOf(alice),
        at('alice/app:multi'),
      ]);
      const gone = [
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--creds',
        credsOf(alice),
        at('alice/app:multi'),
      ];
      const afterDelete = await skopeoRaw(gone);
      expect(afterDelete.code, describeCommand('skopeo', gone)).not.toBe(0);
      expect(afterDelete.stderr).toMatch(/manifest unknown/i);
      expect(await tagsOf('alice/app')).not.toContain('multi');
      // Only that manifest went: the single-arch image alice pushed first is still there.
      expect(await manifestDigest('alice/app:1', alice)).toBe(images.single.digest);
    });

    it('an outsider cannot push to a user’s repository nor to an organization’s, and no tag appears', async () => {
      for (const repository of ['alice/app', 'acme/app']) {
        const before = await tagsOf(repository);
        const command = [
          'copy',
          '--dest-tls-verify=false',
          '--dest-creds',
          credsOf(bob),
          images.single.ref,
          at(`${repository}:from-bob`),
        ];
        expectRefused(await skopeoRaw(command), `bob pushing to ${repository}`, command);
        expect(await tagsOf(repository), `${repository} after bob's push`).toEqual(before);
      }
    });

    it('inspects a public repository anonymously, and an anonymous inspect of a private one fails with an auth error', async () => {
      const inspected = JSON.parse(
        (await workspace.skopeo(['inspect', '--tls-verify=false', at('alice/public:1')])).stdout,
      ) as { Digest: string; Name: string };
      expect(inspected.Digest).toBe(images.single.digest);
      expect(inspected.Name).toBe(`${slipway.host}/alice/public`);

      const command = ['inspect', '--tls-verify=false', at('alice/app:1')];
      expectRefused(await skopeoRaw(command), 'anonymous inspect of alice/app', command);
    });

    it('pulls with a robot token from a Kubernetes .dockerconfigjson given as --authfile', async () => {
      await skopeoCopy('--dest-creds', credsOf(ciRobot), images.single.ref, at('acme/app:deploy'));
      const pullSecret = workspace.path('dockerconfigjson');
      await writeFile(
        pullSecret,
        JSON.stringify({
          auths: {
            [slipway.host]: {
              auth: Buffer.from(credsOf(pullerRobot)).toString('base64'),
            },
          },
        }),
      );
      expect(await pullDigest(at('acme/app:deploy'), '--authfile', pullSecret)).toBe(images.single.digest);

      // Read only: the same secret cannot push.
      const command = [
        'copy',
        '--dest-tls-verify=false',
        '--authfile',
        pullSecret,
        images.single.ref,
        at('acme/app:overwritten'),
      ];
      expectRefused(await skopeoRaw(command), 'acme+puller pushing to acme/app', command);

      // Regenerating the robot's token retires the secret at once.
      const fresh = await slipway.services.auth.identity.regenerateRobotToken(
        fixtures.root,
        pullerRobot.username,
      );
      const stale = ['inspect', '--tls-verify=false', '--authfile', pullSecret, at('acme/app:deploy')];
      expectRefused(
        await skopeoRaw(stale),
        'the pull secret after its token was regenerated',
        stale,
        'credentials',
      );
      pullerRobot = { ...pullerRobot, password: fresh };
    });
  });

  describe('buildah', () => {
    const buildahRaw = (args: readonly string[]) => workspace.buildahRaw(args);

    it('logs in, pushes and pulls with the saved credentials, logs out and is refused again', async () => {
      const authfile = workspace.path('buildah-auth.json');
      await workspace.buildah([
        'login',
        '--tls-verify=false',
        '--authfile',
        authfile,
        '--username',
        alice.username,
        '--password',
        alice.password,
        slipway.host,
      ]);
      const saved = JSON.parse(await readFile(authfile, 'utf8')) as {
        auths: Record<string, { auth: string }>;
      };
      expect(Buffer.from(saved.auths[slipway.host]!.auth, 'base64').toString('utf8')).toBe(credsOf(alice));

      const digestFile = workspace.path('buildah-pushed.digest');
      await workspace.buildah([
        'push',
        '--tls-verify=false',
        '--authfile',
        authfile,
        '--signature-policy',
        workspace.policy,
        '--digestfile',
        digestFile,
        `localhost/${images.single.storageName}`,
        at('alice/built:1'),
      ]);
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      const raw = (
        await workspace.skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          credsOf(alice),
          at('alice/built:1'),
        ])
      ).stdoutBytes;
      expect(sha256(raw)).toBe(pushed);

      const pulledId = (
        await workspace.buildah(
          [
            'pull',
            '--tls-verify=false',
            '--authfile',
            authfile,
            '--signature-policy',
            workspace.policy,
            `${slipway.host}/alice/app:1`,
          ],
          'buildah-fresh',
        )
      ).stdout
        .trim()
        .split('\n')
        .pop();
      expect(`sha256:${pulledId}`).toBe(images.single.manifest.config!.digest);

      await workspace.buildah(['logout', '--authfile', authfile, slipway.host]);
      const afterLogout = JSON.parse(await readFile(authfile, 'utf8')) as { auths: Record<string, unknown> };
      expect(afterLogout.auths[slipway.host]).toBeUndefined();
      const refused = await buildahRaw([
        'push',
        '--tls-verify=false',
        '--authfile',
        authfile,
        '--signature-policy',
        workspace.policy,
        `localhost/${images.single.storageName}`,
        at('alice/built:2'),
      ]);
      expect(refused.code, 'buildah push after logout').not.toBe(0);
      expectRefusalText(refused.stderr, 'access', 'buildah push after logout');
      expect(await tagsOf('alice/built')).toEqual(['1']);
    });

    it('buildah login with a wrong password fails and saves nothing', async () => {
      const authfile = workspace.path('buildah-wrong-auth.json');
      const refused = await buildahRaw([
        'login',
        '--tls-verify=false',
        '--authfile',
        authfile,
        '--username',
        alice.username,
        '--password',
        'not-alices-password',
        slipway.host,
      ]);
      expect(refused.code, 'buildah login with a wrong password').not.toBe(0);
      expectRefusalText(refused.stderr, 'credentials', 'buildah login with a wrong password');
      const saved = await readFile(authfile, 'utf8').catch(() => '{"auths":{}}');
      expect((JSON.parse(saved) as { auths: Record<string, unknown> }).auths[slipway.host]).toBeUndefined();
    });
  });

  describe('containerd (ctr)', () => {
    let containerd: PrivateContainerd;
    beforeAll(async () => {
      containerd = await startContainerd();
      // A tag no ctr test pulls successfully, for the refusals.
      await skopeoCopy('--dest-creds', credsOf(alice), images.single.ref, at('alice/app:ctr'));
    });
    afterAll(async () => {
      await containerd?.stop();
    });

    const ctrPull = (ref: string, ...flags: string[]) =>
      runRaw('ctr', [
        '--address',
        containerd.address,
        'images',
        'pull',
        '--plain-http',
        '--snapshotter',
        'native',
        ...flags,
        ref,
      ]);
    const listed = async (ref: string) =>
      parseCtrImages((await containerd.ctr(['images', 'ls'])).stdout).find((image) => image.ref === ref);

    it('ctr images pull --user pulls a private image', async () => {
      const ref = `${slipway.host}/alice/app:1`;
      const pulled = await ctrPull(ref, '--user', credsOf(alice));
      expect(pulled.code, pulled.stderr).toBe(0);
      expect((await listed(ref))?.digest).toBe(images.single.digest);
    });

    it('ctr without credentials, as an outsider or with a wrong password is refused a private image', async () => {
      const privateRef = `${slipway.host}/alice/app:ctr`;
      for (const [who, flags, because] of [
        ['anonymous', [], 'access'],
        ['bob', ['--user', credsOf(bob)], 'access'],
        ['a wrong password', ['--user', 'alice:not-alices-password'], 'credentials'],
      ] as const) {
        const refused = await ctrPull(privateRef, ...flags);
        expect(refused.code, `ctr pull of a private image: ${who}`).not.toBe(0);
        expectRefusalText(refused.stderr, because, who);
        expect(await listed(privateRef), who).toBeUndefined();
      }
    });

    it('ctr without credentials pulls a public image', async () => {
      const publicRef = `${slipway.host}/alice/public:1`;
      const pulled = await ctrPull(publicRef);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect((await listed(publicRef))?.digest).toBe(images.single.digest);
    });
  });
});
