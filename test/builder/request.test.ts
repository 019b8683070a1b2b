import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidBuildRequestError, type BuildRequest } from '../../src/builder/executors/executor.ts';
import { parseDestination, prepareBuild, sourceUrlForLabel } from '../../src/builder/executors/request.ts';

describe('prepareBuild', () => {
  let dir: string;
  let context: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-build-request-'));
    context = join(dir, 'context');
    await mkdir(join(context, 'docker'), { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(context, 'docker', 'app.Dockerfile'), 'FROM scratch\n');
    await writeFile(join(dir, 'outside.Dockerfile'), 'FROM scratch\n');
    await symlink(join(dir, 'outside.Dockerfile'), join(context, 'linked.Dockerfile'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const request = (overrides: Partial<BuildRequest> = {}): BuildRequest => ({
    contextDir: context,
    source: { revision: 'abc123', url: 'https://git.example.com/acme/app.git' },
    destinations: ['registry.example:5000/acme/app:1'],
    ...overrides,
  });

  it('resolves the Dockerfile inside the context and adds the revision and source labels over given ones', async () => {
    const prepared = await prepareBuild(
      request({
        dockerfile: './docker/../docker/app.Dockerfile',
        labels: { team: 'platform', 'org.opencontainers.image.source': 'elsewhere' },
      }),
    );
    expect(prepared.dockerfile).toBe('docker/app.Dockerfile');
    expect(prepared.dockerfilePath).toBe(join(prepared.contextDir, 'docker', 'app.Dockerfile'));
    expect(prepared.labels).toEqual({
      team: 'platform',
      'org.opencontainers.image.revision': 'abc123',
      'org.opencontainers.image.source': 'https://git.example.com/acme/app.git',
    });
    expect(prepared.registryHosts).toEqual(['registry.example:5000']);
  });

  it.each(['../outside.Dockerfile', '/etc/passwd', 'linked.Dockerfile', '.', 'missing.Dockerfile'])(
    'rejects the Dockerfile %s',
    async (dockerfile) => {
      await expect(prepareBuild(request({ dockerfile }))).rejects.toBeInstanceOf(InvalidBuildRequestError);
    },
  );

  it('rejects a request without destinations or with a missing context', async () => {
    await expect(prepareBuild(request({ destinations: [] }))).rejects.toThrow(/at least one destination/);
    await expect(prepareBuild(request({ contextDir: join(dir, 'nope') }))).rejects.toThrow(/does not exist/);
  });

  it('masks the credentials and a password in the clone URL', async () => {
    const prepared = await prepareBuild(
      request({
        credentials: { username: 'acme+ci', token: 'tkn-1' },
        source: { revision: 'abc', url: 'https://user:p%40ss@git.example.com/a.git' },
      }),
    );
    expect(prepared.labels['org.opencontainers.image.source']).toBe('https://git.example.com/a.git');
    expect(prepared.masker.mask('tkn-1 p@ss p%40ss')).toBe('*** *** ***');
  });
});

describe('parseDestination', () => {
  it('splits host, repository and tag', () => {
    expect(parseDestination('127.0.0.1:5000/acme/app:v1.2')).toEqual({
      reference: '127.0.0.1:5000/acme/app:v1.2',
      host: '127.0.0.1:5000',
      repository: 'acme/app',
      tag: 'v1.2',
    });
    expect(parseDestination('localhost/app:latest').host).toBe('localhost');
  });

  it.each([
    'acme/app:1',
    'registry.example/acme/app',
    'registry.example:5000/app',
    'registry.example/Acme:1',
  ])('rejects %s', (reference) => {
    expect(() => parseDestination(reference)).toThrow(InvalidBuildRequestError);
  });
});

describe('sourceUrlForLabel', () => {
  it('leaves out the user and password, and keeps scp-like URLs', () => {
    expect(sourceUrlForLabel('https://x-token:secret@github.com/acme/app.git')).toBe(
      'https://github.com/acme/app.git',
    );
    expect(sourceUrlForLabel('git@github.com:acme/app.git')).toBe('git@github.com:acme/app.git');
  });
});
