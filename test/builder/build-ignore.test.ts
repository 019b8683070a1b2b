import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextEntries, readBuildIgnore } from '../../src/builder/executors/build-ignore.ts';
import { writeContext } from './fixtures.ts';

describe('the build context sent to the engine', () => {
  let root: string;
  let contexts = 0;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'slipway-build-ignore-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const newContext = (files: Record<string, string>) => writeContext(join(root, `ctx-${++contexts}`), files);

  it('leaves out what .dockerignore excludes, with exceptions, comments and anchored patterns', async () => {
    const context = await newContext({
      Dockerfile: 'FROM scratch\n',
      '.dockerignore': '# the checkout\n/.git\nsecret.txt\nlogs/**\n!logs/keep.log\nnode_modules\n**/*.tmp\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
      'secret.txt': 'token\n',
      'app/secret.txt': 'not at the root, so kept\n',
      'app/cache/scratch.tmp': '',
      'app/main.js': '',
      'logs/today.log': '',
      'logs/keep.log': '',
      'node_modules/left-pad/index.js': '',
    });
    expect(await contextEntries(context, 'Dockerfile')).toEqual([
      '.',
      '.dockerignore',
      'Dockerfile',
      'app',
      'app/cache',
      'app/main.js',
      'app/secret.txt',
      'logs',
      'logs/keep.log',
    ]);
  });

  it('always sends the Dockerfile and the ignore file, as the Docker CLI does', async () => {
    const context = await newContext({
      'build/Dockerfile': 'FROM scratch\n',
      '.dockerignore': 'build\n.dockerignore\n',
      'build/notes.txt': '',
    });
    expect(await contextEntries(context, 'build/Dockerfile')).toEqual([
      '.',
      '.dockerignore',
      'build/Dockerfile',
    ]);
  });

  it('takes the ignore file beside the Dockerfile first, then .containerignore, then .dockerignore', async () => {
    const context = await newContext({
      'build/Dockerfile': 'FROM scratch\n',
      'build/Dockerfile.dockerignore': 'a\n',
      '.containerignore': 'b\n',
      '.dockerignore': 'c\n',
    });
    expect((await readBuildIgnore(context, 'build/Dockerfile')).file).toBe('build/Dockerfile.dockerignore');
    expect((await readBuildIgnore(context, 'Dockerfile')).file).toBe('.containerignore');
    await rm(join(context, '.containerignore'));
    expect((await readBuildIgnore(context, 'Dockerfile')).file).toBe('.dockerignore');
    await rm(join(context, '.dockerignore'));
    const none = await readBuildIgnore(context, 'Dockerfile');
    expect(none.file).toBeUndefined();
    expect(none.ignores('a')).toBe(false);
  });
});
