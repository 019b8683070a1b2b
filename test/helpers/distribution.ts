import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDigest, type Digest } from '../../src/registry/digest.ts';
import { freePort } from './gateway-process.ts';
import { OciClient } from './oci-client.ts';
import { requireTool } from './tools.ts';

/** A CNCF Distribution registry (Debian's `docker-registry`) on a loopback port. */
export interface TestDistribution {
  /** http://127.0.0.1:<port> */
  url: string;
  /** What the registry logged so far (its access log included). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `docker-registry serve` on a random loopback port with filesystem storage in a temporary
 * directory, deletes enabled and no background jobs, and waits until `/v2/` answers.
 */
export async function startDistribution(): Promise<TestDistribution> {
  const binary = requireTool('docker-registry', 'docker-registry');
  const dir = await mkdtemp(join(tmpdir(), 'slipway-distribution-'));
  const port = await freePort();
  const configFile = join(dir, 'config.yml');
  await writeFile(
    configFile,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const text = () => Buffer.concat(output).toString('utf8');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilServing(url, () => child.exitCode !== null || child.signalCode !== null, text);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, output: text, stop };
}

async function waitUntilServing(url: string, exited: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited()) throw new Error(`docker-registry exited during start-up:\n${output()}`);
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`docker-registry at ${url} not ready after 15 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The test OCI client for Distribution, which ignores a body on the opening POST (it answers 202):
 * blobs go up as POST, then PUT with the digest and the whole content.
 */
export class DistributionOciClient extends OciClient {
  override async pushBlob(repository: string, content: Buffer): Promise<Digest> {
    const digest = computeDigest(content);
    const opened = await this.fetch(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    await opened.arrayBuffer();
    const location = opened.headers.get('location');
    if (opened.status !== 202 || !location) throw new Error(`blob upload did not open: ${opened.status}`);
    const target = new URL(location, this.base);
    target.searchParams.set('digest', digest);
    const response = await this.fetch(`${target.pathname}${target.search}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array(content),
    });
    if (response.status !== 201)
      throw new Error(`blob push failed: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
    return digest;
  }
}
