import { digestAlgorithm, digestHex, type Digest } from '../digest.ts';

/** The one place that maps registry objects to storage keys (relative, `/`-separated). */
export const storagePaths = {
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

const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(value: string): boolean {
  return uploadIdPattern.test(value);
}
