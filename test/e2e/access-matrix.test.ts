import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryAction } from '../../src/identity/permissions.ts';
import { accessOf, fetchToken, startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { basicOf, credsOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { sha256 } from '../helpers/oci-layout.ts';
import { OciClient } from '../helpers/oci-client.ts';
import { buildSampleImages, type SampleImages } from '../helpers/sample-images.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { describeCommand } from '../helpers/tools.ts';

type Who =
  'anonymous' | 'member' | 'outsider' | 'acme robot' | 'globex robot' | 'acme team admin' | 'superuser';
type Visibility = 'public' | 'private';
/**
 * Allowed, or refused with the status /v2 answers: clients ask /v2/auth for a token, which then lacks
 * the action, and /v2 answers 401 with a challenge for the missing scope (Basic credentials sent to
 * /v2 itself would get 403 instead; skopeo, buildah and containerd all use the token flow).
 */
type Outcome = 'allowed' | 401;

/**
 * Who may pull, push and delete in acme's public and private repository. The people:
 * - anonymous: no credentials at all;
 * - member: in acme's `readers` team (team role member), which has read on both repositories;
 * - outsider: a user with nothing in acme;
 * - acme robot: `acme+ci`, granted write on both repositories;
 * - globex robot: `globex+ci`, with write on globex's own repository and nothing in acme;
 * - acme team admin: in acme's `maintainers` team (team role admin), with no repository grant;
 * - superuser: the gateway's first superuser.
 * Read allows pull; write allows pull, push and delete (deleting is writing, as in Quay); admin
 * allows everything (`actionsOf` in src/identity/permissions.ts). A public repository is readable by
 * anyone.
 */
// prettier-ignore
const table: ReadonlyArray<readonly [Who, Visibility, pull: Outcome, push: Outcome, del: Outcome]> = [
  // who               repository  pull       push       delete
  ['anonymous',        'public',   'allowed', 401,       401],
  ['anonymous',        'private',  401,       401,       401],
  ['member',           'public',   'allowed', 401,       401],
  ['member',           'private',  'allowed', 401,       401],
  ['outsider',         'public',   'allowed', 401,       401],
  ['outsider',         'private',  401,       401,       401],
  ['acme robot',       'public',   'allowed', 'allowed', 'allowed'],
  ['acme robot',       'private',  'allowed', 'allowed', 'allowed'],
  ['globex robot',     'public',   'allowed', 401,       401],
  ['globex robot',     'private',  401,       401,       401],
  ['acme team admin',  'public',   'allowed', 'allowed', 'allowed'],
  ['acme team admin',  'private',  'allowed', 'allowed', 'allowed'],
  ['superuser',        'public',   'allowed', 'allowed', 'allowed'],
  ['superuser',        'private',  'allowed', 'allowed', 'allowed'],
];

const repositoryOf: Record<Visibility, string> = { public: 'acme/site', private: 'acme/billing' };

interface Cell {
  name: string;
  who: Who;
  visibility: Visibility;
  action: RegistryAction;
  outcome: Outcome;
}

const cells: Cell[] = table.flatMap(([who, visibility, ...outcomes]) =>
  (['pull', 'push', 'delete'] as const).map((action, i) => {
    const outcome = outcomes[i]!;
    const verdict = outcome === 'allowed' ? 'can' : 'cannot';
    const status = outcome === 'allowed' ? '' : ` (${outcome})`;
    return {
      name: `${who} ${verdict} ${action} ${repositoryOf[visibility]} (${visibility})${status}`,
      who,
      visibility,
      action,
      outcome,
    };
  }),
);

/** What skopeo prints when the registry answers 401 (an UNAUTHORIZED error body, or none for a HEAD). */
const refusedText = /unauthorized|\b401\b/i;

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

describe('who can pull, push and delete in an organization’s public and private repository', () => {
  let workspace: ContainersWorkspace;
  let images: SampleImages;
  let slipway: TestSlipway;
  let logins: Record<Who, Login | null>;
  /** The superuser over /v2 with Basic credentials, to set up and to see what changed. */
  let root: OciClient;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-e2e-matrix-');
    [images, slipway] = await Promise.all([buildSampleImages(workspace, 'matrix'), startSecuredSlipway()]);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.organization('globex');
    await fixtures.repository(repositoryOf.public, 'public');
    await fixtures.repository(repositoryOf.private, 'private');
    await fixtures.repository('globex/app');

    const member = await fixtures.user('mia');
    const outsider = await fixtures.user('otto');
    const teamAdmin = await fixtures.user('ada');
    await fixtures.team('acme', 'readers', 'member', [member.username]);
    await fixtures.team('acme', 'maintainers', 'admin', [teamAdmin.username]);
    const acmeRobot = await fixtures.robot('acme', 'ci');
    const globexRobot = await fixtures.robot('globex', 'ci');
    for (const repository of Object.values(repositoryOf)) {
      await fixtures.grant(repository, { team: 'readers' }, 'read');
      await fixtures.grant(repository, { user: acmeRobot.username }, 'write');
    }
    await fixtures.grant('globex/app', { user: globexRobot.username }, 'write');
    logins = {
      anonymous: null,
      member,
      outsider,
      'acme robot': acmeRobot,
      'globex robot': globexRobot,
      'acme team admin': teamAdmin,
      superuser: fixtures.rootLogin,
    };

    root = new OciClient(slipway.url, { Authorization: basicOf(fixtures.rootLogin) });
    for (const repository of Object.values(repositoryOf)) {
      await workspace.skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        credsOf(fixtures.rootLogin),
        images.single.ref,
        at(`${repository}:1`),
      ]);
    }
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const at = (reference: string) => `docker://${slipway.host}/${reference}`;
  const slug = (who: Who) => who.replace(/ /g, '-');
  const tagsOf = async (repository: string) => {
    const response = await root.fetch(`/v2/${repository}/tags/list`);
    expect(response.status, `root listing ${repository}'s tags`).toBe(200);
    return ((await response.json()) as { tags: string[] }).tags.sort();
  };
  /** The digest a tag or digest resolves to for the superuser, or the status when it does not. */
  const resolve = async (repository: string, reference: string) => {
    const response = await root.fetch(`/v2/${repository}/manifests/${reference}`, {
      method: 'HEAD',
      headers: { Accept: ociManifest },
    });
    return response.status === 200 ? response.headers.get('docker-content-digest') : response.status;
  };
  /**
   * A manifest of its own for one delete cell: the sample image's, with an annotation naming the
   * cell, so skopeo's delete (by digest) removes that manifest and no other tag.
   */
  const seedManifest = async (repository: string, tag: string) => {
    const manifest = {
      ...(JSON.parse(images.single.raw.toString('utf8')) as object),
      annotations: { 'org.example.matrix-cell': tag },
    };
    const body = JSON.stringify(manifest);
    const response = await root.putManifest(repository, tag, body, ociManifest);
    expect(response.status, await response.text()).toBe(201);
    return sha256(body);
  };
  /** `--creds` (or `--dest-creds`) for skopeo, or nothing for anonymous. */
  const credentialFlags = (who: Who, flag = '--creds') => {
    const login = logins[who];
    return login ? [flag, credsOf(login)] : [];
  };
  const skopeo = async (who: Who, args: string[], outcome: Outcome) => {
    const result = await workspace.skopeoRaw(args);
    const command = describeCommand('skopeo', args);
    if (outcome === 'allowed') {
      expect(result.code, `${command} as ${who}:\n${result.stderr}`).toBe(0);
    } else {
      expect(result.code, `${command} as ${who} succeeded`).not.toBe(0);
      expect(result.stderr, `${command} as ${who}`).toMatch(refusedText);
    }
    return result;
  };
  /** A token for the one action, from GET /v2/auth with the principal's Basic credentials or none. */
  const tokenFor = async (cell: Cell, repository: string) => {
    const login = logins[cell.who];
    const issued = await fetchToken(
      slipway,
      [`repository:${repository}:${cell.action}`],
      login ? basicOf(login) : undefined,
    );
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    const granted = accessOf(issued.body.token).some(
      (entry) => entry.name === repository && entry.actions.includes(cell.action),
    );
    expect.soft(granted, `the token grants ${cell.action}`).toBe(cell.outcome === 'allowed');
    return new OciClient(slipway.url, { Authorization: `Bearer ${issued.body.token}` });
  };

  it.each(cells)('$name', async (cell) => {
    const { who, action, outcome } = cell;
    const repository = repositoryOf[cell.visibility];
    const client = await tokenFor(cell, repository);

    if (action === 'pull') {
      const direct = await client.fetch(`/v2/${repository}/manifests/1`, {
        headers: { Accept: ociManifest },
      });
      expect(direct.status, 'GET manifests/1 with the token').toBe(outcome === 'allowed' ? 200 : outcome);
      if (outcome === 'allowed') {
        expect(sha256(Buffer.from(await direct.arrayBuffer()))).toBe(images.single.digest);
      } else {
        await direct.body?.cancel();
      }

      const inspected = await skopeo(
        who,
        ['inspect', '--tls-verify=false', ...credentialFlags(who), at(`${repository}:1`)],
        outcome,
      );
      if (outcome === 'allowed') {
        expect((JSON.parse(inspected.stdout.toString('utf8')) as { Digest: string }).Digest).toBe(
          images.single.digest,
        );
      }
      return;
    }

    if (action === 'push') {
      const tag = `pushed-by-${slug(who)}`;
      const before = await tagsOf(repository);
      expect(before).not.toContain(tag);
      if (outcome !== 'allowed') {
        const upload = await client.fetch(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
        expect(upload.status, 'POST blobs/uploads/ with the token').toBe(outcome);
        await upload.body?.cancel();
      }

      await skopeo(
        who,
        [
          'copy',
          '--dest-tls-verify=false',
          ...credentialFlags(who, '--dest-creds'),
          images.single.ref,
          at(`${repository}:${tag}`),
        ],
        outcome,
      );
      if (outcome === 'allowed') {
        expect(await resolve(repository, tag)).toBe(images.single.digest);
        expect(await tagsOf(repository)).toEqual([...before, tag].sort());
      } else {
        expect(await resolve(repository, tag), `${repository}:${tag} after a refused push`).toBe(404);
        expect(await tagsOf(repository), 'tags after a refused push').toEqual(before);
      }
      return;
    }

    const tag = `delete-by-${slug(who)}`;
    const digest = await seedManifest(repository, tag);
    const before = await tagsOf(repository);
    if (outcome !== 'allowed') {
      const direct = await client.fetch(`/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
      expect(direct.status, 'DELETE manifests/<digest> with the token').toBe(outcome);
      await direct.body?.cancel();
    }

    await skopeo(
      who,
      ['delete', '--tls-verify=false', ...credentialFlags(who), at(`${repository}:${tag}`)],
      outcome,
    );
    if (outcome === 'allowed') {
      expect(await resolve(repository, digest), 'the deleted manifest').toBe(404);
      expect(await tagsOf(repository)).toEqual(before.filter((t) => t !== tag));
    } else {
      expect(await resolve(repository, digest), 'the manifest after a refused delete').toBe(digest);
      expect(await resolve(repository, tag)).toBe(digest);
      expect(await tagsOf(repository), 'tags after a refused delete').toEqual(before);
    }
    // The image every pull cell reads is never touched.
    expect(await resolve(repository, '1')).toBe(images.single.digest);
  });
});
