import { readdirSync, readFileSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';

/** The arguments of every process on this machine right now, as /proc/<pid>/cmdline has them. */
export function commandLines(): string[][] {
  const lines: string[][] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // it has ended
    }
    if (cmdline !== '') lines.push(cmdline.replace(/\0$/, '').split('\0'));
  }
  return lines;
}

export interface CommandLineWatch {
  /** Stops watching; every distinct command line seen meanwhile. */
  stop(): Promise<string[][]>;
}

/**
 * Reads every process's command line again and again until stopped, so that even a process living a
 * few milliseconds (an `openssl dgst`) is seen. The reads are synchronous, a pass takes milliseconds, and
 * the event loop runs between passes.
 */
export function watchCommandLines(): CommandLineWatch {
  const seen = new Map<string, string[]>();
  let watching = true;
  const watched = (async () => {
    while (watching) {
      for (const args of commandLines()) seen.set(args.join('\0'), args);
      await setImmediate();
    }
  })();
  return {
    async stop() {
      watching = false;
      await watched;
      return [...seen.values()];
    },
  };
}
