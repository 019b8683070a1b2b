export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociArtifactManifest: 'application/vnd.oci.artifact.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export type ManifestKind = 'image' | 'index';

const kindByMediaType: Record<string, ManifestKind> = {
  [mediaTypes.ociManifest]: 'image',
  [mediaTypes.dockerManifest]: 'image',
  [mediaTypes.ociArtifactManifest]: 'image',
  [mediaTypes.ociIndex]: 'index',
  [mediaTypes.dockerManifestList]: 'index',
};

export function manifestKindOf(mediaType: string): ManifestKind | undefined {
  return kindByMediaType[mediaType];
}

/** Layers whose content lives elsewhere: a manifest may reference them without the blob being pushed. */
export function isNonDistributable(mediaType: string): boolean {
  return (
    mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.') ||
    mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
  );
}

/** `type/subtype; charset=…` → `type/subtype`, lowercased. */
export function baseMediaType(value: string | undefined): string {
  if (!value) return '';
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
}
