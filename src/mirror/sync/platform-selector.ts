import { z } from 'zod';

/*
 * Which child manifests of a multi-platform index (OCI image index or Docker manifest list) a mirror
 * copies. The index itself is always stored byte-exact as the upstream sent it; the children of the
 * platforms left out are simply not copied, which the registry allows (a sparse index).
 *
 * - "all" copies every child.
 * - "os/architecture" matches every variant of it; "os/architecture/variant" only that variant. As in
 *   containerd, an arm64 child without a variant is v8, arm is v7 and amd64 is v1, and x86_64 and
 *   aarch64 mean amd64 and arm64.
 * - A child that refers to another child through the `vnd.docker.reference.digest` annotation (BuildKit's
 *   attestation manifests, whose platform is unknown/unknown) is copied exactly when the child it refers
 *   to is: the provenance and SBOM of a copied platform come along, those of a left-out one do not.
 * - A child with no platform and no such reference belongs to no platform, so it is always copied.
 */

export type PlatformSelection = 'all' | string[];

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

/** The fields of an index's `manifests` entry that the selection looks at. */
export interface IndexChild {
  digest: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

const referenceDigestAnnotation = 'vnd.docker.reference.digest';

const platformPattern = /^[a-z0-9_.-]+\/[a-z0-9_.-]+(\/[a-z0-9_.-]+)?$/;

export const platformSelectionSchema = z.union(
  [
    z.literal('all'),
    z
      .array(
        z
          .string()
          .trim()
          .toLowerCase()
          .regex(platformPattern, { error: 'expected a platform such as "linux/amd64" or "linux/arm64/v8"' }),
      )
      .min(1, { error: 'list at least one platform, or give "all"' }),
  ],
  { error: 'expected "all" or a list of platforms such as ["linux/amd64", "linux/arm64/v8"]' },
);

/** The children to copy, in the index's order. */
export function selectIndexChildren<T extends IndexChild>(
  manifests: readonly T[],
  selection: PlatformSelection,
): T[] {
  if (selection === 'all') return [...manifests];
  const wanted = selection.map(parsePlatform);
  const copied = new Set(
    manifests
      .filter((child) => referencedDigest(child) === undefined && hasPlatform(child))
      .filter((child) => wanted.some((platform) => platformMatches(platform, child.platform!)))
      .map((child) => child.digest),
  );
  return manifests.filter((child) => {
    const target = referencedDigest(child);
    if (target !== undefined) return copied.has(target);
    return hasPlatform(child) ? copied.has(child.digest) : true;
  });
}

function parsePlatform(text: string): Platform {
  const [os = '', architecture = '', variant] = text.toLowerCase().split('/');
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

function platformMatches(wanted: Platform, platform: Platform): boolean {
  const have = normalize(platform);
  const want = normalize(wanted);
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  return wanted.variant === undefined || want.variant === have.variant;
}

const architectureAliases: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64' };
const defaultVariants: Record<string, string> = { arm64: 'v8', arm: 'v7', amd64: 'v1' };

function normalize(platform: Platform): Platform {
  const os = platform.os?.toLowerCase();
  const raw = platform.architecture?.toLowerCase() ?? '';
  const architecture = architectureAliases[raw] ?? raw;
  const variant = platform.variant?.toLowerCase() || defaultVariants[architecture];
  return { os, architecture, variant };
}

function hasPlatform(child: IndexChild): boolean {
  return Boolean(child.platform?.os && child.platform.architecture);
}

function referencedDigest(child: IndexChild): string | undefined {
  return child.annotations?.[referenceDigestAnnotation];
}
