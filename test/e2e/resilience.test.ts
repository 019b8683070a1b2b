import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { sha256, tarFiles } from '../helpers/oci-layout.ts';
import { startPartialRequest } from '../helpers/registry-http.ts';
import { describeLayout, type SampleImage } from '../helpers/sample-images.ts';
import { runRaw, waitFor } from '../helpers/tools.ts';

const MiB = 1024 * 1024;

/**
 * Bytes of the largest upload in progress, read from the data directory (the filesystem driver keeps
 * an upload's bytes in <data>/storage/uploads/<id>/data): how the test knows a push is midway.
 */
async function largestUploadInProgress(dataDir: string): Promise<number> {
  const root = join(dataDir, 'storage', 'uploads');
  let largest = 0;
  for (const id of await readdir(root).catch(() => [] as string[])) {
    const size = await stat(join(root, id, 'data')).then(
      (s) => s.size,
      () => 0,
    );
    largest = Math.max(largest, size);
  }
  return largest;
}

function nextOffset(response: Response): number {
  const match = /^0-(\d+)$/.exec(response.headers.get('range') ?? '');
  if (!match) throw new Error(`upload status has no usable Range header: ${response.headers.get('range')}`);
  return Number(match[1]) + 1;
}

describe('killing the gateway (SIGKILL) and restarting it on the same data directory', () => {
  let workspace: ContainersWorkspace;
  let big: SampleImage & { bigFile: Buffer };
  const gateways: GatewayProcess[] = [];
  const dataDirs: string[] = [];
  let template: string;

  /** A data directory of its own for each test: a copy of one initialised (database created) at the start. */
  const newDataDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-e2e-crash-'));
    dataDirs.push(dir);
    await cp(template, dir, { recursive: true });
    return dir;
  };
  const start = async (dataDir: string, port?: number) => {
    const gateway = await spawnGateway(dataDir, { port });
    gateways.push(gateway);
    return gateway;
  };
  const healthy = async (gateway: GatewayProcess) => {
    const response = await fetch(`${gateway.url}/health/endtoend`);
    const body = await response.text();
    expect(response.status, `/health/endtoend after the restart: ${body}\n${gateway.output()}`).toBe(200);
  };

  beforeAll(async () => {
    template = await mkdtemp(join(tmpdir(), 'slipway-e2e-crash-template-'));
    dataDirs.push(template);
    const initialising = await spawnGateway(template);
    await initialising.stop();
    workspace = await ContainersWorkspace.create('slipway-e2e-crash-');
    // 64 MiB of random bytes in one layer, left uncompressed (it would not compress anyway), so the
    // push takes long enough to be killed in the middle.
    const bigFile = randomBytes(64 * MiB);
    await workspace.build('big', { files: { '/big.bin': bigFile, '/small.txt': 'small\n' } });
    const layout = workspace.path('layouts', 'big');
    await workspace.exportToLayout('big', layout, '1', { compress: false });
    big = { ...(await describeLayout(layout, '1')), bigFile };
  });
  afterEach(async () => {
    for (const gateway of gateways.splice(0)) await gateway.kill();
  });
  afterAll(async () => {
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
    await workspace?.remove();
  });

  it('a skopeo push killed midway leaves no tag and no half-written blob; pushing again works and pulls byte-exact', async () => {
    const bigLayer = big.manifest.layers!.find((layer) => layer.size > 60 * MiB)!;
    expect(bigLayer).toBeDefined();
    const dataDir = await newDataDir();
    const port = await freePort();
    const first = await start(dataDir, port);
    const target = `docker://${first.host}/team/big:1`;
    const skopeoArgs = [
      '--policy',
      workspace.policy,
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
    ];

    const push = runRaw('skopeo', [...skopeoArgs, big.ref, target], { env: workspace.env });
    let pushEnded = false;
    void push.then(() => (pushEnded = true));
    await waitFor(
      'the big layer to be partly uploaded',
      async () => {
        if (pushEnded)
          throw new Error(`the push ended before the gateway could be killed: ${(await push).stderr}`);
        return (await largestUploadInProgress(dataDir)) >= 8 * MiB ? true : undefined;
      },
      { intervalMs: 2, timeoutMs: 60_000 },
    );
    await first.kill();
    const stored = await largestUploadInProgress(dataDir);
    expect(stored).toBeLessThan(bigLayer.size);
    const failed = await push;
    expect(failed.code, 'skopeo push to a gateway killed under it').not.toBe(0);

    const second = await start(dataDir, port);
    await healthy(second);
    // The tag was never pushed.
    const manifest = await fetch(`${second.url}/v2/team/big/manifests/1`);
    expect(manifest.status).toBe(404);
    const tags = await fetch(`${second.url}/v2/team/big/tags/list`);
    if (tags.status === 200) expect(((await tags.json()) as { tags: string[] }).tags).not.toContain('1');
    else expect(tags.status).toBe(404);
    // Nothing half-written is served: the big layer is unknown, or whole.
    const head = await fetch(`${second.url}/v2/team/big/blobs/${bigLayer.digest}`, { method: 'HEAD' });
    expect([200, 404]).toContain(head.status);
    if (head.status === 200) {
      const body = Buffer.from(
        await (await fetch(`${second.url}/v2/team/big/blobs/${bigLayer.digest}`)).arrayBuffer(),
      );
      expect(sha256(body)).toBe(bigLayer.digest);
    }

    // Pushing again succeeds, and the image pulls back byte-exact.
    const digestFile = workspace.path('big.digest');
    const again = await runRaw('skopeo', [...skopeoArgs, '--digestfile', digestFile, big.ref, target], {
      env: workspace.env,
    });
    expect(again.code, `second push after the restart: ${again.stderr}`).toBe(0);
    const out = workspace.path('out', 'big');
    const pulledBack = await runRaw(
      'skopeo',
      [
        '--policy',
        workspace.policy,
        'copy',
        '--preserve-digests',
        '--src-tls-verify=false',
        target,
        `oci:${out}:1`,
      ],
      { env: workspace.env },
    );
    expect(pulledBack.code, pulledBack.stderr).toBe(0);
    const pulled = await describeLayout(out, '1');
    expect(pulled.digest).toBe(big.digest);
    const layer = await pulled.layout.blob(bigLayer.digest);
    expect(sha256(layer)).toBe(bigLayer.digest);
    expect(tarFiles(layer).get('big.bin')?.equals(big.bigFile)).toBe(true);
  });

  it('a push the gateway acknowledged survives a SIGKILL right after it', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const first = await start(dataDir, port);
    const small = await workspace.build('acknowledged', {
      files: { '/note.txt': `acknowledged ${randomBytes(8).toString('hex')}\n` },
    });
    expect(small).toMatch(/^[0-9a-f]{64}$/);
    const layout = workspace.path('layouts', 'acknowledged');
    await workspace.exportToLayout('acknowledged', layout, '1');
    const image = await describeLayout(layout, '1');
    const target = `docker://${first.host}/team/acknowledged:1`;
    await workspace.skopeo(['copy', '--dest-tls-verify=false', image.ref, target]);
    await first.kill(); // no graceful shutdown: whatever was acknowledged must already be durable

    const second = await start(dataDir, port);
    await healthy(second);
    const raw = (await workspace.skopeo(['inspect', '--raw', '--tls-verify=false', target])).stdoutBytes;
    expect(raw.equals(image.raw)).toBe(true);
    const out = workspace.path('out', 'acknowledged');
    await workspace.skopeo(['copy', '--src-tls-verify=false', target, `oci:${out}:1`]);
    const pulled = await describeLayout(out, '1');
    for (const digest of await image.layout.reachable(image.digest)) {
      expect(sha256(await pulled.layout.blob(digest))).toBe(digest);
    }
  });

  it('an upload session started before the kill survives the restart: its status answers and it can be finished', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const first = await start(dataDir, port);
    const chunks = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
    const whole = Buffer.concat(chunks);
    const digest = sha256(whole);

    const started = await fetch(`${first.url}/v2/team/session/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = new URL(started.headers.get('location')!, first.url).pathname;
    const patched = await fetch(`${first.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${chunks[0]!.length - 1}` },
      body: new Uint8Array(chunks[0]!),
    });
    expect(patched.status).toBe(202);

    await first.kill();
    const second = await start(dataDir, port);
    await healthy(second);

    const status = await fetch(`${second.url}${location}`);
    expect(status.status, `upload status after the restart: ${await status.clone().text()}`).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${chunks[0]!.length - 1}`);
    const resumed = await fetch(`${second.url}${location}`, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${chunks[0]!.length}-${whole.length - 1}`,
      },
      body: new Uint8Array(chunks[1]!),
    });
    expect(resumed.status).toBe(202);
    const completed = await fetch(`${second.url}${location}?digest=${encodeURIComponent(digest)}`, {
      method: 'PUT',
    });
    expect(completed.status, await completed.clone().text()).toBe(201);
    const blob = await fetch(`${second.url}/v2/team/session/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(digest);
  });

  it('a chunk killed in the middle of its PATCH: after the restart the status says where to resume, and the blob completes byte-exact', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const first = await start(dataDir, port);
    const firstChunk = randomBytes(2 * MiB);
    const secondChunk = randomBytes(8 * MiB);
    const whole = Buffer.concat([firstChunk, secondChunk]);
    const digest = sha256(whole);

    const started = await fetch(`${first.url}/v2/team/midway/blobs/uploads/`, { method: 'POST' });
    const location = new URL(started.headers.get('location')!, first.url).pathname;
    const patched = await fetch(`${first.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${firstChunk.length - 1}` },
      body: new Uint8Array(firstChunk),
    });
    expect(patched.status).toBe(202);

    const sent = 4 * MiB;
    const partial = startPartialRequest(
      `${first.url}${location}`,
      'PATCH',
      {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${firstChunk.length}-${whole.length - 1}`,
      },
      secondChunk,
      sent,
    );
    await partial.written;
    await waitFor('part of the second chunk to be stored', async () =>
      nextOffset(await fetch(`${first.url}${location}`)) > firstChunk.length ? true : undefined,
    );
    await first.kill();
    partial.abort();
    await partial.done;

    const second = await start(dataDir, port);
    await healthy(second);
    const status = await fetch(`${second.url}${location}`);
    expect(status.status).toBe(204);
    const offset = nextOffset(status);
    expect(offset).toBeGreaterThan(firstChunk.length);
    expect(offset).toBeLessThanOrEqual(firstChunk.length + sent);

    const resumed = await fetch(`${second.url}${location}`, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${offset}-${whole.length - 1}`,
      },
      body: new Uint8Array(whole.subarray(offset)),
    });
    expect(resumed.status).toBe(202);
    expect(resumed.headers.get('range')).toBe(`0-${whole.length - 1}`);
    const completed = await fetch(`${second.url}${location}?digest=${encodeURIComponent(digest)}`, {
      method: 'PUT',
    });
    expect(completed.status, await completed.clone().text()).toBe(201);
    const blob = await fetch(`${second.url}/v2/team/midway/blobs/${digest}`);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(digest);
  });
});
