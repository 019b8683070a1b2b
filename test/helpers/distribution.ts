import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDigest, type Digest } from '../../src/registry/digest.ts';
import { freePort } from './gateway-process.ts';
import { OciClient } from './oci-client.ts';
import { waitForRegistry } from './registry-http.ts';
import { requireTool } from './tools.ts';

/** A CNCF Distribution registry (Debian's `docker-registry`) on a loopback port. */
export interface TestDistribution {
  /** http://127.0.0.1:<port> */
  url: string;
  pid: number;
  child: ChildProcess;
  /** What the registry logged so far. */
  output(): string;
  /** SIGTERM (SIGKILL after 10 s), then the temporary directory, if it made one, is removed. */
  stop(): Promise<void>;
}

export interface DistributionOptions {
  /** The executable; default `docker-registry` on PATH. */
  binary?: string;
  /** Where its config and storage go (kept); default a temporary directory that `stop` removes. */
  dir?: string;
  /** Where what it logs goes; default kept in memory. */
  logFile?: string;
  /** Errors only and no access log, as for measurements; default warnings and an access log line per request. */
  quiet?: boolean;
  /** Proxy mode: a read-only pull-through cache of the registry at this URL. */
  proxyRemoteUrl?: string;
}

/**
 * Starts `docker-registry serve` on a random loopback port with filesystem storage, the in-memory blob
 * descriptor cache, deletes enabled and no background jobs, and waits until `/v2/` answers. Used by
 * the tests and, for the reference registry, by the bench.
 */
export async function startDistribution(options: DistributionOptions = {}): Promise<TestDistribution> {
  const binary = options.binary ?? requireTool('docker-registry', 'docker-registry');
  const temporary = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'slipway-distribution-')));
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const configFile = join(dir, 'config.yml');
  await writeFile(
    configFile,
    [
      'version: 0.1',
      'log:',
      ...(options.quiet ? ['  level: error', '  accesslog:', '    disabled: true'] : ['  level: warn']),
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
      ...(options.proxyRemoteUrl ? ['proxy:', `  remoteurl: ${options.proxyRemoteUrl}`] : []),
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output: () => string;
  if (options.logFile === undefined) {
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    output = () => Buffer.concat(chunks).toString('utf8');
  } else {
    const logFile = options.logFile;
    const log = createWriteStream(logFile);
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('exit', () => log.end());
    output = () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '(no log yet)';
      }
    };
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (running()) {
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(kill);
      }
      if (temporary) await rm(dir, { recursive: true, force: true });
    })());
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForRegistry(url, { name: 'docker-registry', exited: () => !running(), output });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, pid: child.pid!, child, output, stop };
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
