import { digestAlgorithm, digestHex, parseDigest, type Digest } from '../digest.ts';

/** The one place that maps registry objects to storage keys (relative, `/`-separated). */
export const storagePaths = {
  blobsRoot: 'blobs',
  uploadsRoot: 'uploads',
  blob(digest: Digest): string {
    const hex = digestHex(digest);
    return `blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
  },
  uploadRoot(uploadId: string): string {
    return `uploads/${uploadId}`;
  },
  uploadData(uploadId: string): string {
    return `uploads/${uploadId}/data`;
  },
  /** Bytes after the last full multipart part (object stores). */
  uploadTail(uploadId: string): string {
    return `uploads/${uploadId}/tail`;
  },
  /** Resumable upload state (object stores). */
  uploadState(uploadId: string): string {
    return `uploads/${uploadId}/state.json`;
  },
  /** A probe of its own per check, so gateways sharing storage never read each other's. */
  healthProbe(token: string): string {
    return `_health/probe-${token}`;
  },
};

const blobKeyPattern = /^blobs\/([a-z0-9]+)\/([0-9a-f]{2})\/([0-9a-f]+)$/;

/** The digest whose blob is stored under `key`, or null for a key no blob is stored under. */
export function digestOfBlobKey(key: string): Digest | null {
  const match = blobKeyPattern.exec(key);
  if (!match || !match[3]!.startsWith(match[2]!)) return null;
  try {
    return parseDigest(`${match[1]}:${match[3]}`);
  } catch {
    return null;
  }
}

/** The upload that `key` belongs to, or null. */
export function uploadIdOfKey(key: string): string | null {
  const id = /^uploads\/([^/]+)(\/|$)/.exec(key)?.[1];
  return id !== undefined && isUploadId(id) ? id : null;
}

const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(value: string): boolean {
  return uploadIdPattern.test(value);
}
