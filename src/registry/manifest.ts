import { OciError } from './errors.ts';
import { parseDigest, type Digest } from './digest.ts';
import {
  baseMediaType,
  isNonDistributable,
  manifestKindOf,
  mediaTypes,
  type ManifestKind,
} from './media-types.ts';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** What the registry needs to know about a manifest; the bytes themselves are kept untouched. */
export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Blobs that must already be in the repository (config and distributable layers). */
  blobs: Descriptor[];
  /** Child manifests of an index (may be absent: sparse indexes are allowed). */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * Validates a manifest body against its Content-Type. The media type comes from the header, else from
 * the body's `mediaType`; when both are present they must agree.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  const json = parseJsonObject(body);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = baseMediaType(contentType);
  const mediaType =
    header && header !== 'application/octet-stream' && header !== 'application/json'
      ? header
      : (declared ?? guessMediaType(json));
  if (declared !== undefined && declared !== mediaType) {
    throw invalid(`mediaType "${declared}" in the manifest does not match Content-Type "${mediaType}"`);
  }
  const kind = manifestKindOf(mediaType);
  if (!kind) {
    if (mediaType === mediaTypes.dockerSchema1 || mediaType === mediaTypes.dockerSchema1Signed) {
      throw new OciError(
        'MANIFEST_INVALID',
        'Docker schema 1 manifests are not supported: push schema 2 or OCI',
        {
          status: 400,
        },
      );
    }
    throw new OciError('MANIFEST_INVALID', `unsupported manifest media type "${mediaType}"`, { status: 400 });
  }
  if (json.schemaVersion !== 2 && mediaType !== mediaTypes.ociArtifactManifest) {
    throw invalid('schemaVersion must be 2');
  }
  const subject = json.subject === undefined ? undefined : parseDescriptor(json.subject, 'subject');
  const common = {
    mediaType,
    kind,
    subject,
    artifactType: optionalString(json.artifactType, 'artifactType'),
    annotations: optionalAnnotations(json.annotations, 'annotations'),
  };
  if (kind === 'index') {
    return { ...common, blobs: [], manifests: descriptorList(json.manifests, 'manifests', true) };
  }
  if (mediaType === mediaTypes.ociArtifactManifest) {
    const blobs = json.blobs === undefined ? [] : descriptorList(json.blobs, 'blobs', true);
    return { ...common, blobs: blobs.filter((d) => !isNonDistributable(d.mediaType)), manifests: [] };
  }
  const config = parseDescriptor(json.config, 'config');
  const layers = descriptorList(json.layers, 'layers', true);
  return {
    ...common,
    blobs: [config, ...layers.filter((d) => !isNonDistributable(d.mediaType))],
    manifests: [],
  };
}

/** The artifactType a referrers response reports: the manifest's own, else its config media type. */
export function referrerArtifactType(manifest: ParsedManifest, body: Buffer): string | undefined {
  if (manifest.artifactType) return manifest.artifactType;
  if (manifest.kind !== 'image') return undefined;
  const json = JSON.parse(body.toString('utf8')) as { config?: { mediaType?: string } };
  return json.config?.mediaType;
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw invalid(`manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid('manifest must be a JSON object');
  return json as Record<string, unknown>;
}

function guessMediaType(json: Record<string, unknown>): string {
  if (Array.isArray(json.manifests)) return mediaTypes.ociIndex;
  if (json.config !== undefined) return mediaTypes.ociManifest;
  throw invalid('manifest has no mediaType and no Content-Type was given');
}

function descriptorList(value: unknown, field: string, required: boolean): Descriptor[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw invalid(`${field} must be an array of descriptors`);
  return value.map((entry, i) => parseDescriptor(entry, `${field}[${i}]`));
}

function parseDescriptor(value: unknown, field: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`${field} must be a descriptor object`);
  }
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType.length === 0)
    throw invalid(`${field}.mediaType is required`);
  if (typeof d.digest !== 'string') throw invalid(`${field}.digest is required`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw invalid(`${field}.size must be a non-negative integer`);
  }
  let digest: Digest;
  try {
    digest = parseDigest(d.digest);
  } catch (error) {
    throw invalid(`${field}.digest: ${(error as Error).message}`);
  }
  const descriptor: Descriptor = { mediaType: d.mediaType, digest, size: d.size };
  const artifactType = optionalString(d.artifactType, `${field}.artifactType`);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const annotations = optionalAnnotations(d.annotations, `${field}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  if (typeof d.platform === 'object' && d.platform !== null)
    descriptor.platform = d.platform as Descriptor['platform'];
  return descriptor;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  return value;
}

function optionalAnnotations(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalid(`${field} must be an object of strings`);
  for (const v of Object.values(value))
    if (typeof v !== 'string') throw invalid(`${field} values must be strings`);
  return value as Record<string, string>;
}

function invalid(message: string): OciError {
  return new OciError('MANIFEST_INVALID', message);
}
