import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mediaTypes } from '../../src/registry/media-types.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { imageManifest, OciClient } from '../helpers/oci-client.ts';

const MiB = 1024 * 1024;

/** The most resident memory the process has had (VmHWM), in bytes. */
async function peakResident(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

// Operators size containers by the gateway's peak: a start that briefly needs 1 GiB gets OOM-killed
// under a 512 MiB limit even though it settles far lower. These bounds sit between the measured
// peaks with the embedded PostgreSQL kept on V8's baseline WebAssembly compiler (~580 MiB first
// start, ~200 MiB restart, ~250 MiB after the pushes) and without it (~1.1 GiB, ~290 MiB, ~780 MiB).
describe('peak memory on the embedded defaults', () => {
  let gateway: GatewayProcess | undefined;
  let dataDir: string | undefined;
  beforeAll(() => {
    if (!existsSync('/proc/self/status')) throw new Error('this test reads /proc/<pid>/status (Linux)');
  });
  afterEach(async () => {
    await gateway?.kill().catch(() => {});
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('stays bounded through the first start, a restart and a burst of tag pushes', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-memory-'));
    gateway = await spawnGateway(dataDir);
    const firstStart = await peakResident(gateway.child.pid!);
    await gateway.stop();

    gateway = await spawnGateway(dataDir);
    const restart = await peakResident(gateway.child.pid!);
    const client = new OciClient(gateway.url);
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const manifest = imageManifest(
      { digest: await client.pushBlob('team/app', config), size: config.length },
      [],
    );
    for (let i = 0; i < 600; i++) {
      const response = await client.putManifest('team/app', `v${i}`, manifest, mediaTypes.ociManifest);
      expect(response.status).toBe(201);
    }
    const afterPushes = await peakResident(gateway.child.pid!);

    const report = `first start ${Math.round(firstStart / MiB)} MiB, restart ${Math.round(restart / MiB)} MiB, after 600 pushes ${Math.round(afterPushes / MiB)} MiB`;
    expect(firstStart, report).toBeLessThan(900 * MiB);
    expect(restart, report).toBeLessThan(400 * MiB);
    expect(afterPushes, report).toBeLessThan(550 * MiB);
  });
});
