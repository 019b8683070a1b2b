import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { setTimeout } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { inject } from 'vitest';
import type { OutputStream } from '../../src/builder/executors/index.ts';
import { adminPassword, adminUser } from '../helpers/auth.ts';
import type { ContainersWorkspace } from '../helpers/containers.ts';
import { requireTool, run, waitFor } from '../helpers/tools.ts';
import { spawnSlipway, type SlipwayProcess } from '../helpers/worker-process.ts';

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

/** The ids of the processes on this machine that have `marker` as an argument. */
async function processesWithArgument(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(marker)) found.push(Number(entry));
  }
  return found;
}

/** Whether any process on this machine has `marker` in its command line. */
export async function processWithArgumentExists(marker: string): Promise<boolean> {
  return (await processesWithArgument(marker)).length > 0;
}

/**
 * SIGKILLs the processes that have one of `markers` as an argument (left behind by a builder killed in a
 * test: its buildah and the RUN step outlive it), then waits until they are gone, so that nothing still
 * writes into the directories the test removes next.
 */
export async function killProcessesWithArgument(...markers: string[]): Promise<void> {
  const remaining = async () => (await Promise.all(markers.map(processesWithArgument))).flat();
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await remaining();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it has ended
      }
    }
    await setTimeout(100);
  }
  throw new Error(`processes with ${markers.join(' or ')} as an argument outlived SIGKILL for 5 s`);
}

/** `skopeo inspect` of a pushed image as the superuser: the digest of its manifest and its labels. */
export async function inspectAsAdmin(
  workspace: ContainersWorkspace,
  reference: string,
): Promise<{ Digest: string; Labels: Record<string, string> }> {
  return JSON.parse(
    (
      await workspace.skopeo([
        'inspect',
        '--tls-verify=false',
        '--creds',
        `${adminUser}:${adminPassword}`,
        `docker://${reference}`,
      ])
    ).stdout,
  ) as { Digest: string; Labels: Record<string, string> };
}

/**
 * `slipway builder --gateway <gateway> --name <name> <args>` as its own process, with the builder
 * secret, the workspace's containers configuration and the test run's Redis.
 */
export function spawnBuilder(
  workspace: ContainersWorkspace,
  builder: { gateway: string; name: string; secret: string },
  args: string[],
): SlipwayProcess {
  return spawnSlipway(['builder', '--gateway', builder.gateway, '--name', builder.name, ...args], {
    ...workspace.env,
    SLIPWAY_BUILDER_SECRET: builder.secret,
    REDIS_URL: inject('redisUrl'),
  });
}

/** The arguments of `slipway builder` for buildah (chroot, vfs) with its storage in `workspace.path(dir)`. */
export function buildahBuilderArgs(workspace: ContainersWorkspace, dir: string): string[] {
  return [
    '--isolation',
    'chroot',
    '--storage-driver',
    'vfs',
    '--root',
    workspace.path(dir, 'root'),
    '--runroot',
    workspace.path(dir, 'run'),
    '--signature-policy',
    workspace.policy,
  ];
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
      // crun refuses hosts with cgroup v1 and v2 mounted side by side (hybrid) when v2 holds a controller;
      // runc takes them, and the engine behaves the same otherwise.
      '--runtime',
      requireTool('runc', 'runc'),
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
