import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MirrorResource } from '../../src/cli/resources.ts';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';

const skopeoFile = `
docker.io:
  images:
    redis: ["7.2", "7.4"]
    busybox: []
  images-by-tag-regex:
    redis: ^7\\.4\\.\\d+$
quay.io:
  images-by-semver:
    coreos/etcd: ">= 3.5"
  images:
    coreos/etcd: ["v3.4.0"]
  tls-verify: false
`;

describe('slipway mirror', () => {
  const gateway = useCliGateway();

  beforeAll(async () => {
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['robot', 'create', 'acme+mirror']);
  });

  it('create reads the password from stdin, never prints it, and list and show find the mirror', async () => {
    const created = await gateway.root.json<MirrorResource>(
      [
        'mirror',
        'create',
        'acme/nginx',
        '--from',
        'docker.io/nginx',
        '--username',
        'hub-user',
        '--password-stdin',
        '--include',
        '1.27.*,stable',
        '--exclude',
        '*-rc*',
        '--platforms',
        'linux/amd64,linux/arm64',
        '--cron',
        '0 3 * * *',
        '--delete-missing',
        '--max-deletions',
        '5',
        '--robot',
        'mirror',
      ],
      { stdin: 'hub-secret-password\n' },
    );
    expect(created).toMatchObject({
      repository: 'acme/nginx',
      upstream: {
        url: 'https://registry-1.docker.io',
        repository: 'library/nginx',
        username: 'hub-user',
        hasPassword: true,
      },
      filter: { include: ['1.27.*', 'stable'], exclude: ['*-rc*'] },
      platforms: ['linux/amd64', 'linux/arm64'],
      schedule: { cron: '0 3 * * *' },
      deleteMissing: true,
      maxDeletions: 5,
      robot: 'acme+mirror',
      state: 'never_run',
    });
    expect(JSON.stringify(created)).not.toContain('hub-secret-password');

    const listed = await gateway.root.ok(['mirror', 'list']);
    expect(tableRows(listed)).toContainEqual({
      repository: 'acme/nginx',
      upstream: 'registry-1.docker.io/library/nginx',
      schedule: 'cron "0 3 * * *" (UTC)',
      robot: 'acme+mirror',
      enabled: 'yes',
      state: 'never_run',
      'next run': expect.stringMatching(/T03:00:00Z$/),
    });
    const shown = await gateway.root.ok(['mirror', 'show', 'acme/nginx']);
    expect(shown).not.toContain('hub-secret-password');
    expect(recordFields(shown)).toMatchObject({
      upstream: 'registry-1.docker.io/library/nginx',
      username: 'hub-user',
      password: 'set (never shown)',
      tags: 'include 1.27.*,stable; exclude *-rc*',
      platforms: 'linux/amd64, linux/arm64',
      'delete missing': 'yes, at most 5 tags a run',
      robot: 'acme+mirror',
    });

    const disabled = await gateway.root.ok(['mirror', 'disable', 'acme/nginx']);
    expect(disabled).toBe('mirror acme/nginx is disabled\n');
    expect(recordFields(await gateway.root.ok(['mirror', 'show', 'acme/nginx']))).toMatchObject({
      enabled: 'no',
      'next run': '-',
    });
  });

  it('says what is wrong with a command line or a setting, with exit status 2', async () => {
    const badCron = await gateway.root.run([
      'mirror',
      'create',
      'acme/bad',
      '--from',
      'quay.io/coreos/etcd',
      '--cron',
      '0 3 * *',
      '--robot',
      'mirror',
    ]);
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toContain('a cron expression has 5');
    const both = await gateway.root.run([
      'mirror',
      'create',
      'acme/bad',
      '--from',
      'quay.io/coreos/etcd',
      '--cron',
      '0 3 * * *',
      '--interval',
      '6h',
      '--robot',
      'mirror',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be used with/);
    const noRobot = await gateway.root.run(['mirror', 'create', 'acme/bad', '--from', 'quay.io/coreos/etcd']);
    expect(noRobot.code).toBe(2);
    expect(noRobot.stderr).toContain('--robot');
    const otherRobot = await gateway.root.run([
      'mirror',
      'create',
      'acme/bad',
      '--from',
      'quay.io/coreos/etcd',
      '--robot',
      'ghost',
    ]);
    expect(otherRobot.code).toBe(2);
    expect(otherRobot.stderr).toContain('robot acme+ghost does not exist');
  });

  it('import creates the mirrors of a skopeo sync file and prints its warnings', async () => {
    const file = join(gateway.root.home, 'sync.yaml');
    await writeFile(file, skopeoFile);
    const result = await gateway.root.run(['mirror', 'import', file, '--into', 'acme', '--robot', 'mirror']);
    expect(result.code, result.stderr).toBe(0);
    expect(tableRows(result.stdout).map((row) => [row.repository, row.upstream])).toEqual([
      ['acme/library/redis', 'registry-1.docker.io/library/redis'],
      ['acme/library/busybox', 'registry-1.docker.io/library/busybox'],
    ]);
    expect(result.stderr).toContain('warning: "quay.io".tls-verify: TLS certificates are not verified');
    expect(result.stderr).toContain(
      'warning: "quay.io".images."coreos/etcd": listed under images-by-semver and also with tags',
    );

    const again = await gateway.root.run(['mirror', 'import', file, '--into', 'acme', '--robot', 'mirror']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('are mirrors already; nothing was created');

    const listed = await gateway.root.json<MirrorResource[]>(['mirror', 'list', '--namespace', 'acme']);
    const redis = listed.find((m) => m.repository === 'acme/library/redis');
    expect(redis?.filter.regex).toEqual(['^7\\.4\\.\\d+$', '^(?:7\\.2|7\\.4)$']);
  });

  it('delete leaves the repository, no longer a mirror', async () => {
    expect(await gateway.root.ok(['mirror', 'delete', 'acme/nginx'])).toBe(
      'acme/nginx is no longer a mirror\n',
    );
    const gone = await gateway.root.run(['mirror', 'show', 'acme/nginx']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('acme/nginx is not a mirror');
    expect(await gateway.root.ok(['repo', 'show', 'acme/nginx'])).toContain('acme/nginx');
  });
});
