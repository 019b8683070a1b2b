import { describe, expect, it } from 'vitest';
import {
  importSkopeoSyncFile,
  type MirrorDefinition,
  type SkopeoSyncImportOptions,
} from '../../../src/mirror/sync/skopeo-sync-file.ts';
import { selectTags } from '../../../src/mirror/sync/tag-filter.ts';

/** A sync file as an operator keeps it: several registries, every kind of image list, credentials and TLS. */
const syncFile = `# Images the build cluster needs, synced nightly with skopeo sync --src yaml --dest docker.
docker.io:
  images:
    nginx: []
    bitnami/redis:
      - "7.4"
      - 7.4.1
      - 1.10
  images-by-semver:
    alpine: ">= 3.19, < 4"
  credentials:
    username: ci-bot
    password: 0123
quay.io:
  tls-verify: false
  images:
    coreos/etcd:
      - v3.5.17
      - sha256:8b5c2e9d2a2f0a0e4f6a7b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6
  images-by-tag-regex:
    prometheus/node-exporter: ^v1\\.[89]\\.\\d+$
registry.example.com:5000/team:
  images-by-tag-regex:
    app: ^release-
  images:
    app: [stable]
  cert-dir: /etc/containers/certs.d/registry.example.com:5000
ghcr.io:
  images:
    acme/tool:
      - sha256:1111111111111111111111111111111111111111111111111111111111111111
`;

const options: SkopeoSyncImportOptions = { namespace: 'mirrors', source: 'sync.yml' };

function mirrorNamed(mirrors: MirrorDefinition[], name: string): MirrorDefinition {
  const mirror = mirrors.find((m) => m.name === name);
  if (!mirror) throw new Error(`no mirror ${name} among ${mirrors.map((m) => m.name).join(', ')}`);
  return mirror;
}

function copiedTags(mirror: MirrorDefinition, upstreamTags: string[]): string[] {
  return selectTags(mirror.filter, upstreamTags)
    .filter((decision) => decision.selected)
    .map(({ tag }) => tag);
}

function rejection(text: string, namespace = 'mirrors'): string {
  try {
    importSkopeoSyncFile(text, { namespace, source: 'sync.yml' });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the file to be refused');
}

describe('importing a skopeo sync file', () => {
  const { mirrors, warnings } = importSkopeoSyncFile(syncFile, options);

  it('makes one mirror per image, named after the upstream repository under the namespace', () => {
    expect(mirrors.map((m) => m.name)).toEqual([
      'mirrors/library/nginx',
      'mirrors/bitnami/redis',
      'mirrors/library/alpine',
      'mirrors/coreos/etcd',
      'mirrors/prometheus/node-exporter',
      'mirrors/team/app',
    ]);
  });

  it("reaches Docker Hub at its registry host, with official images under library/ and the registry's credentials", () => {
    expect(mirrorNamed(mirrors, 'mirrors/library/nginx').upstream).toEqual({
      url: 'https://registry-1.docker.io',
      repository: 'library/nginx',
      credentials: { username: 'ci-bot', password: '0123' },
      tlsVerify: true,
    });
    expect(mirrorNamed(mirrors, 'mirrors/bitnami/redis').upstream.repository).toBe('bitnami/redis');
  });

  it('reaches other registries over https, keeping tls-verify and a path prefix from the registry key', () => {
    expect(mirrorNamed(mirrors, 'mirrors/coreos/etcd').upstream).toEqual({
      url: 'https://quay.io',
      repository: 'coreos/etcd',
      tlsVerify: false,
    });
    expect(mirrorNamed(mirrors, 'mirrors/team/app').upstream).toEqual({
      url: 'https://registry.example.com:5000',
      repository: 'team/app',
      tlsVerify: true,
    });
  });

  it('copies every tag of an image listed with no tags', () => {
    const tags = ['1.27.3', '1.27.3-alpine', 'mainline', 'latest'];
    expect(copiedTags(mirrorNamed(mirrors, 'mirrors/library/nginx'), tags)).toEqual(tags);
  });

  it('copies exactly the listed tags, as written (1.10 is not 1.1)', () => {
    const redis = mirrorNamed(mirrors, 'mirrors/bitnami/redis');
    expect(copiedTags(redis, ['7.4', '7.4.1', '7.4.10', '7.4.1-debian', '1.1', '1.10', 'latest'])).toEqual([
      '7.4',
      '7.4.1',
      '1.10',
    ]);
  });

  it("copies the tags in a semver range written in skopeo's syntax, pre-releases left out", () => {
    const alpine = mirrorNamed(mirrors, 'mirrors/library/alpine');
    expect(
      copiedTags(alpine, ['3.18.9', '3.19', '3.20.3', '3.21.0_rc1', '4.0.0-rc.1', 'edge', 'latest']),
    ).toEqual(['3.19', '3.20.3']);
  });

  it('copies the tags a regular expression matches', () => {
    const exporter = mirrorNamed(mirrors, 'mirrors/prometheus/node-exporter');
    expect(copiedTags(exporter, ['v1.7.0', 'v1.8.2', 'v1.9.0', 'v1.9.0-rc.0', 'master'])).toEqual([
      'v1.8.2',
      'v1.9.0',
    ]);
  });

  it('copies the union of a tag list and a regular expression given for the same image, as skopeo does', () => {
    const app = mirrorNamed(mirrors, 'mirrors/team/app');
    expect(copiedTags(app, ['release-1.2', 'release-1.3', 'stable', 'stable-old', 'latest'])).toEqual([
      'release-1.2',
      'release-1.3',
      'stable',
    ]);
  });

  it('keeps every platform of multi-platform images unless told otherwise', () => {
    expect(mirrors.every((m) => m.platforms === 'all')).toBe(true);
    const arm = importSkopeoSyncFile(syncFile, { ...options, platforms: ['linux/arm64'] });
    expect(arm.mirrors.every((m) => JSON.stringify(m.platforms) === '["linux/arm64"]')).toBe(true);
  });

  it('warns about what a mirror cannot do rather than dropping it silently', () => {
    expect(warnings).toEqual([
      {
        path: '"quay.io".tls-verify',
        message:
          'TLS certificates are not verified; the mirrors use https://quay.io: if the registry serves plain HTTP, change their upstream URL to http://',
      },
      {
        path: '"quay.io".images."coreos/etcd"[1]',
        message:
          'sha256:8b5c2e9d2a2f0a0e4f6a7b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6 is a digest: mirrors follow tags, so it is not copied',
      },
      {
        path: '"registry.example.com:5000/team".cert-dir',
        message:
          'the certificates in /etc/containers/certs.d/registry.example.com:5000 are not imported: the mirrors of registry.example.com:5000 verify its TLS certificate against the system CAs and present no client certificate',
      },
      {
        path: '"ghcr.io".images."acme/tool"[0]',
        message:
          'sha256:1111111111111111111111111111111111111111111111111111111111111111 is a digest: mirrors follow tags, so it is not copied',
      },
      {
        path: '"ghcr.io".images."acme/tool"',
        message: 'only digests are listed, so this image is not imported',
      },
    ]);
  });

  it('never puts credentials in a warning', () => {
    expect(JSON.stringify(warnings)).not.toContain('0123');
  });
});

describe('what one filter cannot express', () => {
  it('leaves out an image listed both by semver and by tags, with a warning', () => {
    const { mirrors, warnings } = importSkopeoSyncFile(
      'docker.io:\n  images:\n    nginx: [stable]\n    busybox: []\n  images-by-semver:\n    nginx: ^1\n',
      options,
    );
    expect(mirrors.map((m) => m.name)).toEqual(['mirrors/library/busybox']);
    expect(warnings).toEqual([
      {
        path: '"docker.io".images.nginx',
        message:
          'listed under images-by-semver and also with tags or a regular expression: a mirror has one filter, whose criteria must all hold, so this image is not imported; create its mirror by hand',
      },
    ]);
  });

  it('copies every tag when an image is listed for every tag and by a regular expression too', () => {
    const { mirrors } = importSkopeoSyncFile(
      'quay.io:\n  images:\n    app: []\n  images-by-tag-regex:\n    app: ^v\n',
      options,
    );
    expect(copiedTags(mirrors[0]!, ['v1', 'latest'])).toEqual(['v1', 'latest']);
  });

  it('warns about a registry with no images', () => {
    const { mirrors, warnings } = importSkopeoSyncFile('quay.io:\n  tls-verify: true\n', options);
    expect(mirrors).toEqual([]);
    expect(warnings).toEqual([
      { path: '"quay.io"', message: 'no images are listed, so nothing is mirrored from this registry' },
    ]);
  });
});

describe('a file that cannot be imported', () => {
  it('is refused when it is not YAML, with the line', () => {
    expect(rejection('docker.io:\n  images: [nginx\n')).toBe(
      'sync.yml is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 3, column 1',
    );
    expect(rejection('docker.io:\n  images: {}\ndocker.io:\n  images: {}\n')).toBe(
      'sync.yml is not valid YAML: Map keys must be unique at line 3, column 1',
    );
  });

  it('is refused with every wrong key path and what is expected there', () => {
    const text = [
      'docker.io:',
      '  image:',
      '    nginx: []',
      '  images:',
      '    nginx: latest',
      '    nginx:1.27: []',
      '    Nginx: []',
      '    busybox: [latest, "bad tag"]',
      'quay.io:',
      '  images-by-tag-regex:',
      '    app: ^(v1',
      '  images-by-semver:',
      '    tool: ">= 1 <<2"',
      '  credentials:',
      '    username: me',
      '  tls-verify: maybe',
      'myregistry:',
      '  images:',
      '    x: []',
      '',
    ].join('\n');
    expect(rejection(text).split('\n')).toEqual([
      'invalid skopeo sync file sync.yml:',
      '  "docker.io".image: unknown registry key; expected images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir',
      '  "docker.io".images.nginx: expected a list of tags, or [] for every tag',
      '  "docker.io".images."nginx:1.27": expected a repository without a tag or digest; list its tags under it',
      '  "docker.io".images.Nginx: the mirror name mirrors/library/Nginx is not valid: invalid repository name: use lowercase letters, digits and separators (. _ __ -) in components joined by /',
      '  "docker.io".images.busybox[1]: "bad tag" is not a tag: up to 128 letters, digits, "_", "." and "-"',
      '  "quay.io".tls-verify: expected true or false',
      '  "quay.io".credentials: give both username and password',
      '  "quay.io".images-by-tag-regex.app: "^(v1" is not a valid regular expression: Unterminated group',
      '  "quay.io".images-by-semver.tool: ">= 1 <<2" is not a semver range; write conditions such as ">=1.24 <2", "~1.27" or "^1 || ^2"',
      '  myregistry: expected a registry host such as quay.io or registry.example.com:5000 (Docker Hub: docker.io)',
    ]);
  });

  it('is refused when two images would be the same mirror', () => {
    expect(
      rejection(
        'docker.io:\n  images:\n    nginx: []\nindex.docker.io:\n  images:\n    library/nginx: [latest]\n',
      ),
    ).toBe(
      'invalid skopeo sync file sync.yml:\n  "index.docker.io".images."library/nginx": would be the mirror mirrors/library/nginx, like "docker.io".images.nginx',
    );
  });

  it('is refused when it is empty or not a mapping of registries', () => {
    expect(rejection('')).toBe(
      'invalid skopeo sync file sync.yml:\n  the file is empty: expected registries such as "docker.io:" with their images',
    );
    expect(rejection('- docker.io/library/nginx\n')).toBe(
      'invalid skopeo sync file sync.yml:\n  expected a mapping of registry host names, such as "docker.io:", to their images',
    );
  });

  it('is refused for a namespace that cannot hold repositories', () => {
    expect(rejection(syncFile, 'Mirrors')).toMatch(/^namespace "Mirrors": invalid repository name/);
  });

  it('is an invalid-request error', () => {
    expect(() => importSkopeoSyncFile('- a\n', options)).toThrow(
      expect.objectContaining({ code: 'SLW_ERR_INVALID' }),
    );
  });
});
