import { execa } from 'execa';
import type { ExecutorOutput } from './executor-output.ts';
import { BuildCancelledError, BuildFailedError } from './executor.ts';

export interface StreamedCommand {
  command: string;
  args: readonly string[];
  /** The whole environment of the command. */
  env: NodeJS.ProcessEnv;
  output: ExecutorOutput;
  /** Names the step in errors, e.g. `build` or `push to host/repo:tag`. */
  phase: string;
  signal?: AbortSignal;
  /** After cancelling, how long the processes get to end on SIGTERM before SIGKILL. */
  killGraceMs: number;
}

/** Process groups of commands still running, killed if this process exits first. */
const runningGroups = new Set<number>();
let exitHookInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group has ended
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of runningGroups) signalGroup(pid, 'SIGKILL');
  });
}

/**
 * Runs a command with its output going line by line to `output`. The command gets a process group of its
 * own so that cancelling stops everything it started (a build's RUN steps too), not only itself.
 * Rejects with `BuildCancelledError` when `signal` aborts, and with `BuildFailedError` (with the last
 * lines of output) when the command fails.
 */
export async function runStreamed(command: StreamedCommand): Promise<void> {
  const { output, signal, phase } = command;
  if (signal?.aborted) throw new BuildCancelledError(phase);

  const subprocess = execa(command.command, command.args, {
    env: command.env,
    extendEnv: false,
    stdin: 'ignore',
    buffer: false,
    detached: true,
    reject: false,
    ...(signal ? { cancelSignal: signal } : {}),
    forceKillAfterDelay: command.killGraceMs,
  });
  const pid = subprocess.pid;
  if (pid !== undefined) {
    installExitHook();
    runningGroups.add(pid);
  }

  const stdout = output.splitter('stdout');
  const stderr = output.splitter('stderr');
  subprocess.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  subprocess.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

  let forceKill: NodeJS.Timeout | undefined;
  const cancel = () => {
    if (pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    forceKill = setTimeout(() => signalGroup(pid, 'SIGKILL'), command.killGraceMs);
  };
  signal?.addEventListener('abort', cancel, { once: true });

  try {
    const result = await subprocess;
    stdout.end();
    stderr.end();
    if (signal?.aborted) throw new BuildCancelledError(phase);
    if (result.failed) {
      const reason =
        result.exitCode !== undefined
          ? `exit status ${result.exitCode}`
          : result.signal
            ? `killed by ${result.signal}`
            : output.mask(result.shortMessage ?? 'the command failed');
      throw new BuildFailedError(phase, reason, output.tail());
    }
  } finally {
    signal?.removeEventListener('abort', cancel);
    clearTimeout(forceKill);
    if (pid !== undefined) {
      // Whatever the command left behind in its group goes with it.
      if (signal?.aborted) signalGroup(pid, 'SIGKILL');
      runningGroups.delete(pid);
    }
  }
}
