import { setFlagsFromString } from 'node:v8';

/**
 * Every socket read of an upload or a download is a fresh ArrayBuffer outside the JavaScript heap, and
 * by default V8 starts a full mark-compact whenever such external memory has grown by 64 MiB: about 30
 * per GiB pushed, each marking the whole heap, which cost more CPU than hashing the bytes. Counting
 * external memory against the global heap limit instead leaves these short-lived buffers to scavenges:
 * 2–4 full collections per GiB and ~50% faster pushes, for ~80 MiB more resident memory at the height
 * of four parallel pushes. Set at run time it takes effect (measured: 4 full collections instead of 40).
 */
export function tuneGarbageCollectionForStreaming(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}
