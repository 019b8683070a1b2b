import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireTool, run } from '../helpers/tools.ts';

/** git with no user or system configuration. */
export function gitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: join(home, 'no-gitconfig'),
    GIT_AUTHOR_NAME: 'Builder Test',
    GIT_AUTHOR_EMAIL: 'builder@example.com',
    GIT_COMMITTER_NAME: 'Builder Test',
    GIT_COMMITTER_EMAIL: 'builder@example.com',
    LANG: 'C.UTF-8',
  };
}

/** A bare repository (the "server") and a working clone that commits and pushes to it. */
export class GitRepository {
  readonly bare: string;
  readonly work: string;
  readonly #env: NodeJS.ProcessEnv;

  private constructor(dir: string, name: string) {
    this.bare = join(dir, `${name}.git`);
    this.work = join(dir, name);
    this.#env = gitEnv(dir);
  }

  static async create(dir: string, name: string): Promise<GitRepository> {
    requireTool('git', 'git');
    const repository = new GitRepository(dir, name);
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', repository.bare], {
      env: repository.#env,
    });
    await run('git', ['clone', '--quiet', repository.bare, repository.work], { env: repository.#env });
    return repository;
  }

  git(args: string[]) {
    return run('git', args, { cwd: this.work, env: this.#env });
  }

  /** Writes the files, commits them on `branch` and pushes; the commit id. */
  async commit(files: Record<string, string>, branch = 'main'): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(this.work, path)), { recursive: true });
      await writeFile(join(this.work, path), content);
    }
    await this.git(['checkout', '--quiet', '-B', branch]);
    await this.git(['add', '--all']);
    await this.git(['commit', '--quiet', '--allow-empty', '-m', `change ${Object.keys(files).join(', ')}`]);
    await this.git(['push', '--quiet', 'origin', `${branch}:${branch}`]);
    return (await this.git(['rev-parse', 'HEAD'])).stdout.trim();
  }
}
