import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { CheckedDriver } from '../../../src/registry/storage/checked-driver.ts';
import { FsDriver } from '../../../src/registry/storage/fs-driver.ts';
import { describeBlobDriverContract } from './driver-contract.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-fs-driver-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describeBlobDriverContract('filesystem', () => new FsDriver(root));
describeBlobDriverContract(
  'filesystem behind CheckedDriver',
  () => new CheckedDriver(new FsDriver(join(root, 'checked'))),
);
