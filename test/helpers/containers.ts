import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { requireTool, run, runRaw, type RawResult, type RunResult } from './tools.ts';

/** What goes into a test image built `FROM scratch`. */
export interface ImageSpec {
  /** An image built before in the same storage to build on (a layer more); default `scratch`. */
  base?: string;
  /** Absolute paths in the image and their content. */
  files: Record<string, string | Buffer>;
  arch?: string;
  os?: string;
  variant?: string;
  env?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
}

/** The skopeo and buildah this suite needs, with the Debian packages that provide them. */
export function requireSkopeoAndBuildah(): void {
  requireTool('skopeo', 'skopeo');
  requireTool('buildah', 'buildah');
}

/**
 * A private world for skopeo and buildah in one temporary directory: signature policy
 * (insecureAcceptAnything), registries.conf, storage.conf, containers.conf, registries.d and TMPDIR of
 * its own, and containers-storage roots (vfs) under it, so nothing depends on the machine's
 * /etc/containers or /var/lib/containers. (Only skopeo's blob-info cache, which root cannot move, stays
 * machine-wide; it records where blobs were seen, keyed by registry host:port, which differs per test.)
 */
export class ContainersWorkspace {
  readonly dir: string;
  readonly policy: string;
  readonly env: NodeJS.ProcessEnv;
  readonly #registriesD: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.policy = join(dir, 'policy.json');
    this.#registriesD = join(dir, 'registries.d');
    this.env = {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
      CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
      CONTAINERS_CONF: join(dir, 'containers.conf'),
      TMPDIR: join(dir, 'tmp'),
    };
  }

  static async create(prefix = 'slipway-e2e-'): Promise<ContainersWorkspace> {
    requireSkopeoAndBuildah();
    const workspace = new ContainersWorkspace(await mkdtemp(join(tmpdir(), prefix)));
    const { dir } = workspace;
    await mkdir(join(dir, 'tmp'));
    await mkdir(join(dir, 'registries.d'));
    // Parents for OCI layouts: images exported for tests, and images pulled back out of a registry.
    await mkdir(join(dir, 'layouts'));
    await mkdir(join(dir, 'out'));
    await writeFile(workspace.policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(
      join(dir, 'registries.conf'),
      'unqualified-search-registries = []\nshort-name-mode = "disabled"\n',
    );
    await writeFile(
      join(dir, 'storage.conf'),
      `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, 'storage', 'default', 'root')}"\nrunroot = "${join(dir, 'storage', 'default', 'run')}"\n`,
    );
    await writeFile(join(dir, 'containers.conf'), '[engine]\n');
    return workspace;
  }

  /** Paths under the workspace. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Runs buildah on a containers-storage of this workspace (a fresh one per `storage` name). */
  buildah(args: readonly string[], storage = 'main'): Promise<RunResult> {
    return run('buildah', this.#buildahArgs(args, storage), { env: this.env });
  }

  /** buildah as `buildah()` runs it, for a command that may fail: how it ended and what it printed. */
  buildahRaw(args: readonly string[], storage = 'main'): Promise<RawResult> {
    return runRaw('buildah', this.#buildahArgs(args, storage), { env: this.env });
  }

  skopeo(args: readonly string[]): Promise<RunResult> {
    return run('skopeo', this.#skopeoArgs(args), { env: this.env });
  }

  /** skopeo as `skopeo()` runs it, for a command that may fail: how it ended and what it printed. */
  skopeoRaw(args: readonly string[]): Promise<RawResult> {
    return runRaw('skopeo', this.#skopeoArgs(args), { env: this.env });
  }

  #buildahArgs(args: readonly string[], storage: string): string[] {
    const root = join(this.dir, 'storage', storage);
    return ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args];
  }

  #skopeoArgs(args: readonly string[]): string[] {
    return ['--policy', this.policy, '--registries.d', this.#registriesD, ...args];
  }

  /** Builds `name` from scratch with the spec's files and config; returns its image ID (config digest hex). */
  async build(name: string, spec: ImageSpec, storage = 'main'): Promise<string> {
    const context = this.path('contexts', name.replace(/[^\w.-]/g, '_'));
    await rm(context, { recursive: true, force: true });
    for (const [file, content] of Object.entries(spec.files)) {
      const target = join(context, file);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    const container = (
      await this.buildah(
        [
          'from',
          '--signature-policy',
          this.policy,
          '--name',
          `${name.replace(/[^\w.-]/g, '_')}-work`,
          spec.base ? `localhost/${spec.base}` : 'scratch',
        ],
        storage,
      )
    ).stdout.trim();
    try {
      await this.buildah(['copy', container, `${context}/.`, '/'], storage);
      const config = ['--os', spec.os ?? 'linux', '--arch', spec.arch ?? 'amd64'];
      if (spec.variant) config.push('--variant', spec.variant);
      for (const env of spec.env ?? []) config.push('--env', env);
      if (spec.cmd) config.push('--cmd', JSON.stringify(spec.cmd));
      for (const [key, value] of Object.entries(spec.labels ?? {})) config.push('--label', `${key}=${value}`);
      await this.buildah(['config', ...config, container], storage);
      const committed = await this.buildah(
        ['commit', '--quiet', '--signature-policy', this.policy, container, `localhost/${name}`],
        storage,
      );
      return committed.stdout.trim();
    } finally {
      await this.buildah(['rm', container], storage);
    }
  }

  /** A manifest list of images already built in `storage`. */
  async manifestList(name: string, images: readonly string[], storage = 'main'): Promise<void> {
    await this.buildah(['manifest', 'create', `localhost/${name}`], storage);
    for (const image of images) {
      await this.buildah(
        ['manifest', 'add', `localhost/${name}`, `containers-storage:localhost/${image}`],
        storage,
      );
    }
  }

  /**
   * Writes an image (or, with `list`, a manifest list and all its images) to an OCI layout as `tag`.
   * `compress: false` keeps layers as plain tar.
   */
  async exportToLayout(
    name: string,
    layout: string,
    tag: string,
    {
      list = false,
      compress = true,
      storage = 'main',
    }: { list?: boolean; compress?: boolean; storage?: string } = {},
  ): Promise<void> {
    const flags = ['--signature-policy', this.policy, ...(compress ? [] : ['--disable-compression'])];
    if (list) {
      await this.buildah(
        ['manifest', 'push', '--all', ...flags, `localhost/${name}`, `oci:${layout}:${tag}`],
        storage,
      );
    } else {
      await this.buildah(['push', ...flags, `localhost/${name}`, `oci:${layout}:${tag}`], storage);
    }
  }

  async remove(): Promise<void> {
    // Retries: a buildah that was just killed may still be releasing files under its run root.
    await rm(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}
