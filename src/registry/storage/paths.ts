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
  healthProbe: '_health/probe',
};

const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(value: string): boolean {
  return uploadIdPattern.test(value);
}
