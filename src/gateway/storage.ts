import { join } from 'node:path';
import type { RegistryMetrics } from '../registry/metrics.ts';
import { CheckedDriver } from '../registry/storage/checked-driver.ts';
import type { BlobDriver } from '../registry/storage/driver.ts';
import { FsDriver } from '../registry/storage/fs-driver.ts';
import type { Config } from './config.ts';

export async function createBlobDriver(config: Config, metrics: RegistryMetrics): Promise<BlobDriver> {
  const storage = config.storage;
  if (storage.driver === 's3' && storage.s3) {
    // Loaded only when configured: the AWS SDK is large and filesystem deployments never need it.
    const { S3Driver } = await import('../registry/storage/s3-driver.ts');
    return new CheckedDriver(new S3Driver(storage.s3), metrics);
  }
  const syncWrites = storage.syncWrites ?? config.database.url !== undefined;
  return new CheckedDriver(
    new FsDriver(storage.root ?? join(config.dataDir, 'storage'), { syncWrites }),
    metrics,
  );
}
