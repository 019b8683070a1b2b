import { Counter, Histogram, type Registry } from 'prom-client';

export interface RegistryMetrics {
  storageDuration: Histogram<'driver' | 'operation'>;
  storageErrors: Counter<'driver' | 'operation'>;
  blobBytesServed: Counter<never>;
  blobBytesReceived: Counter<never>;
  uploadsCompleted: Counter<'method'>;
  manifestsPushed: Counter<'media_type'>;
  gcDeleted: Counter<'kind'>;
}

export function createRegistryMetrics(registry: Registry): RegistryMetrics {
  const registers = [registry];
  return {
    storageDuration: new Histogram({
      name: 'slipway_storage_operation_seconds',
      help: 'Time spent in blob storage operations',
      labelNames: ['driver', 'operation'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    storageErrors: new Counter({
      name: 'slipway_storage_errors_total',
      help: 'Blob storage operations that failed',
      labelNames: ['driver', 'operation'],
      registers,
    }),
    blobBytesServed: new Counter({
      name: 'slipway_blob_bytes_served_total',
      help: 'Blob bytes sent to clients',
      registers,
    }),
    blobBytesReceived: new Counter({
      name: 'slipway_blob_bytes_received_total',
      help: 'Blob bytes received in uploads',
      registers,
    }),
    uploadsCompleted: new Counter({
      name: 'slipway_blob_uploads_completed_total',
      help: 'Blob uploads committed, by method (monolithic, chunked, mount)',
      labelNames: ['method'],
      registers,
    }),
    manifestsPushed: new Counter({
      name: 'slipway_manifests_pushed_total',
      help: 'Manifests pushed, by media type',
      labelNames: ['media_type'],
      registers,
    }),
    gcDeleted: new Counter({
      name: 'slipway_gc_deleted_total',
      help: 'Objects removed by garbage collection (manifests, blobs, uploads)',
      labelNames: ['kind'],
      registers,
    }),
  };
}
