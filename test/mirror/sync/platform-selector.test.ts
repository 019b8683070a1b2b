import { describe, expect, it } from 'vitest';
import {
  platformSelectionSchema,
  selectIndexChildren,
  type IndexChild,
  type Platform,
} from '../../../src/mirror/sync/platform-selector.ts';

const digestOf = (name: string): string => `sha256:${Buffer.from(name).toString('hex').padEnd(64, '0')}`;

function image(name: string, platform: Platform): IndexChild & { mediaType: string; size: number } {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digestOf(name),
    size: 1000,
    platform,
  };
}

/** BuildKit's provenance/SBOM manifest for one platform's image. */
function attestation(of: string): IndexChild {
  return {
    digest: digestOf(`attestation of ${of}`),
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: {
      'vnd.docker.reference.digest': digestOf(of),
      'vnd.docker.reference.type': 'attestation-manifest',
    },
  };
}

/** An index as Docker Hub serves nginx: seven platforms, each followed by its attestation. */
const index: IndexChild[] = [
  image('amd64', { os: 'linux', architecture: 'amd64' }),
  attestation('amd64'),
  image('arm-v5', { os: 'linux', architecture: 'arm', variant: 'v5' }),
  attestation('arm-v5'),
  image('arm-v7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
  attestation('arm-v7'),
  image('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
  attestation('arm64'),
  image('386', { os: 'linux', architecture: '386' }),
  attestation('386'),
  image('ppc64le', { os: 'linux', architecture: 'ppc64le' }),
  attestation('ppc64le'),
  image('s390x', { os: 'linux', architecture: 's390x' }),
  attestation('s390x'),
];

/** Which images (by name) and attestations (as "@name") a selection copies. */
function copied(selection: 'all' | string[], manifests: readonly IndexChild[] = index): string[] {
  return selectIndexChildren(manifests, selection).map((child) => {
    const target = child.annotations?.['vnd.docker.reference.digest'];
    const name = (digest: string) => Buffer.from(digest.slice(7).replace(/(00)+$/, ''), 'hex').toString();
    return target ? `@${name(target)}` : name(child.digest);
  });
}

describe('choosing the platforms of an index to copy', () => {
  it('copies every child for "all"', () => {
    expect(selectIndexChildren(index, 'all')).toEqual(index);
  });

  it('copies the chosen platforms with their attestations, in the index order', () => {
    expect(copied(['linux/amd64', 'linux/arm64/v8'])).toEqual(['amd64', '@amd64', 'arm64', '@arm64']);
  });

  it('matches every variant when none is given, and only that one when it is', () => {
    expect(copied(['linux/arm'])).toEqual(['arm-v5', '@arm-v5', 'arm-v7', '@arm-v7']);
    expect(copied(['linux/arm/v7'])).toEqual(['arm-v7', '@arm-v7']);
  });

  it('takes an arm64 image without a variant as v8, and x86_64 or aarch64 as amd64 or arm64', () => {
    const manifests = [
      image('arm64', { os: 'linux', architecture: 'arm64' }),
      image('amd64', { os: 'linux', architecture: 'x86_64' }),
    ];
    expect(copied(['linux/arm64/v8'], manifests)).toEqual(['arm64']);
    expect(copied(['linux/aarch64'], manifests)).toEqual(['arm64']);
    expect(copied(['linux/amd64'], manifests)).toEqual(['amd64']);
  });

  it('copies nothing for a platform the index does not have, not even attestations', () => {
    expect(copied(['windows/amd64'])).toEqual([]);
  });

  it('always copies a child that belongs to no platform', () => {
    const signature: IndexChild = { digest: digestOf('signature') };
    expect(copied(['linux/s390x'], [...index, signature])).toEqual(['s390x', '@s390x', 'signature']);
  });

  it('does not copy an attestation whose image is not in the index', () => {
    expect(copied(['linux/amd64'], [attestation('riscv64'), ...index.slice(0, 2)])).toEqual([
      'amd64',
      '@amd64',
    ]);
  });
});

describe('a platform selection', () => {
  it('is "all" or a list of os/architecture[/variant]', () => {
    expect(platformSelectionSchema.parse('all')).toBe('all');
    expect(platformSelectionSchema.parse(['Linux/AMD64', 'linux/arm64/v8'])).toEqual([
      'linux/amd64',
      'linux/arm64/v8',
    ]);
  });

  it('refuses anything else, saying what is expected', () => {
    const message = (value: unknown) => platformSelectionSchema.safeParse(value).error?.issues[0]?.message;
    expect(message(['amd64'])).toBe('expected a platform such as "linux/amd64" or "linux/arm64/v8"');
    expect(message([])).toBe('list at least one platform, or give "all"');
    expect(message('linux/amd64')).toBe(
      'expected "all" or a list of platforms such as ["linux/amd64", "linux/arm64/v8"]',
    );
  });
});
