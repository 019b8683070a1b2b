import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PullMirror, RegistryCredentials } from './executor.ts';

/**
 * A private temporary directory (0700) for one build's registry files: the auth file with the push
 * credentials (0600) and a registries.conf with the pull mirrors. Remove it when the build ends.
 */
export class RegistryFiles {
  readonly dir: string;
  authFile?: string;
  registriesConf?: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<RegistryFiles> {
    return new RegistryFiles(await mkdtemp(join(tmpdir(), 'slipway-build-')));
  }

  /** Writes a containers-auth.json that gives `credentials` for each of `hosts`. */
  async writeAuthFile(hosts: readonly string[], credentials: RegistryCredentials): Promise<string> {
    const auth = Buffer.from(`${credentials.username}:${credentials.token}`).toString('base64');
    const auths = Object.fromEntries(hosts.map((host) => [host, { auth }]));
    this.authFile = join(this.dir, 'auth.json');
    await writeFile(this.authFile, JSON.stringify({ auths }), { mode: 0o600 });
    return this.authFile;
  }

  /**
   * Writes a registries.conf where each mirrored registry is pulled through its mirror first (and from
   * itself when the mirror fails). Short names resolve on Docker Hub, as they do in Dockerfiles.
   */
  async writeRegistriesConf(mirrors: readonly PullMirror[], insecure: boolean): Promise<string> {
    const lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"', ''];
    for (const { registry, mirror } of mirrors) {
      lines.push(
        '[[registry]]',
        `prefix = ${tomlString(registry)}`,
        `location = ${tomlString(registry)}`,
        '[[registry.mirror]]',
        `location = ${tomlString(mirror)}`,
        `insecure = ${insecure}`,
        '',
      );
    }
    this.registriesConf = join(this.dir, 'registries.conf');
    await writeFile(this.registriesConf, lines.join('\n'), { mode: 0o600 });
    return this.registriesConf;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function tomlString(value: string): string {
  return JSON.stringify(value);
}
