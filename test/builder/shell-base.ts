import { join } from 'node:path';
import { adminPassword, adminUser } from '../helpers/auth.ts';
import type { ContainersWorkspace } from '../helpers/containers.ts';
import type { IdentityFixtures } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { hostShellRootfs, writeContext } from './fixtures.ts';

/**
 * A tiny base image with a shell (this machine's /bin/sh, sleep and cat with their libraries) and
 * `/etc/base-name` holding `name`, so that images of different names share no layer. Built offline with
 * the workspace's buildah and written to an OCI layout; its reference, `oci:<dir>:1`, for `skopeo copy`
 * into whichever registry a test's Dockerfiles name in FROM.
 */
export async function shellBaseLayout(workspace: ContainersWorkspace, name: string): Promise<string> {
  const context = workspace.path('contexts', `shell-base-${name}`);
  await hostShellRootfs(join(context, 'rootfs'));
  await writeContext(context, {
    Dockerfile: 'FROM scratch\nCOPY rootfs/ /\n',
    'rootfs/etc/base-name': `${name}\n`,
  });
  await workspace.buildah([
    'bud',
    '--signature-policy',
    workspace.policy,
    '--isolation',
    'chroot',
    '-t',
    `localhost/shell-base-${name}`,
    context,
  ]);
  const layout = workspace.path('layouts', `shell-base-${name}`);
  await workspace.exportToLayout(`shell-base-${name}`, layout, '1');
  return `oci:${layout}:1`;
}

/** Copies a base image (such as `shellBaseLayout` makes) into the Slipway as `acme/base:1`, public. */
export async function publishBase(
  workspace: ContainersWorkspace,
  slipway: TestSlipway,
  fixtures: IdentityFixtures,
  base: string,
): Promise<void> {
  await workspace.skopeo([
    'copy',
    '--dest-tls-verify=false',
    '--dest-creds',
    `${adminUser}:${adminPassword}`,
    base,
    `docker://${slipway.host}/acme/base:1`,
  ]);
  await fixtures.setVisibility('acme/base', 'public');
}
