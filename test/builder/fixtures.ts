import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import type { OutputStream } from '../../src/builder/executors/index.ts';
import { requireTool, run, waitFor } from '../helpers/tools.ts';

/** The lines an executor handed to `onLine`. */
export class LineRecorder {
  readonly lines: { stream: OutputStream; text: string }[] = [];
  readonly onLine = (stream: OutputStream, text: string): void => {
    this.lines.push({ stream, text });
  };

  get texts(): string[] {
    return this.lines.map((line) => line.text);
  }

  /** Resolves once a line matching `pattern` has arrived. */
  waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    return waitFor(`a build line matching ${pattern}`, () => this.texts.find((text) => pattern.test(text)), {
      timeoutMs,
    });
  }
}

/** Writes a build context: relative paths and their content. */
export async function writeContext(dir: string, files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/**
 * A root filesystem with a shell and a few commands copied from this machine (with the libraries `ldd`
 * names), so that tests can build images with RUN steps without pulling a base image from the internet.
 */
export async function hostShellRootfs(dir: string): Promise<void> {
  const commands = ['/bin/sh', '/bin/sleep', '/bin/cat'];
  const files = new Set(commands);
  for (const command of commands) {
    const { stdout } = await run('ldd', [command]);
    for (const match of stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) files.add(match[1]!);
  }
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(file, join(dir, file)); // follows symbolic links and keeps the mode
  }
}

/** Whether any process on this machine has `marker` in its command line. */
export async function processWithArgumentExists(marker: string): Promise<boolean> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(marker)) return true;
  }
  return false;
}

export interface PodmanService {
  socketPath: string;
  stop(): Promise<void>;
}

/** `podman system service` on a unix socket, with its storage (vfs) and state under `dir`. */
export async function startPodmanService(dir: string, env: NodeJS.ProcessEnv): Promise<PodmanService> {
  const podman = requireTool('podman', 'podman');
  const socketPath = join(dir, 'podman.sock');
  const child: ChildProcess = spawn(
    podman,
    [
      '--root',
      join(dir, 'root'),
      '--runroot',
      join(dir, 'run'),
      '--storage-driver',
      'vfs',
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--tmpdir',
      join(dir, 'tmp'),
      'system',
      'service',
      '--time=0',
      `unix://${socketPath}`,
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor('podman system service to answer', async () => {
      if (child.exitCode !== null) throw new Error(`podman system service exited: ${stderr}`);
      return (await ping(socketPath)) ? true : undefined;
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    socketPath,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}
