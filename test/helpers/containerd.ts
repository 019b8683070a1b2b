import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, run, waitFor, type RunResult } from './tools.ts';

export interface PrivateContainerd {
  /** The daemon's gRPC socket, for `ctr --address`. */
  address: string;
  ctr(args: readonly string[]): Promise<RunResult>;
  /** Stops the daemon (SIGTERM, SIGKILL after 10 s) and removes its root, state and socket. */
  stop(): Promise<void>;
}

/**
 * Starts a containerd of its own (needs root): temporary root, state and socket, the CRI plugin
 * disabled and the "opt" plugin kept inside the temporary directory, so nothing of the machine's
 * containerd (if any) is touched.
 */
export async function startContainerd(): Promise<PrivateContainerd> {
  requireTool('containerd', 'containerd');
  requireTool('ctr', 'containerd');
  if (process.getuid?.() !== 0)
    throw new Error('the containerd end-to-end tests start a containerd daemon and must run as root');
  const dir = await mkdtemp(join(tmpdir(), 'slipway-e2e-containerd-'));
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      '',
    ].join('\n'),
  );
  const daemon = spawn('containerd', ['--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  daemon.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  daemon.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    daemon.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const ctr = (args: readonly string[]) => run('ctr', ['--address', address, ...args]);
  const stop = async () => {
    if (!exited) {
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('containerd to answer on its socket', async () => {
      if (exited) throw new Error(`containerd exited:\n${log}`);
      await ctr(['version']);
      return true;
    });
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\ncontainerd log:\n${log}`);
  }
  return { address, ctr, stop };
}

export interface CtrImage {
  ref: string;
  type: string;
  digest: string;
  platforms: string[];
}

/** Parses `ctr images ls` (REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE is two words, e.g. "934.0 B"). */
export function parseCtrImages(output: string): CtrImage[] {
  return output
    .trim()
    .split('\n')
    .slice(1)
    .filter((line) => line.trim())
    .map((line) => {
      const [ref, type, digest, , , platforms] = line.trim().split(/\s+/);
      return { ref: ref!, type: type!, digest: digest!, platforms: (platforms ?? '').split(',') };
    });
}
