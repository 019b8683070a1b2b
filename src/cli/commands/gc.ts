import type { Command } from 'commander';
import { configFlag, dataFlag, withLocalServices, type LocalConfigFlags } from '../local-config.ts';
import { outputOf } from '../output.ts';

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('run garbage collection once against the configured database and storage, then exit')
    .option(...dataFlag)
    .option(...configFlag)
    .action(async (flags: LocalConfigFlags, command: Command) => {
      const out = outputOf(command);
      const report = await withLocalServices(flags, (services) => services.gc.run(services.gcPolicy));
      if (report === null)
        out.done('another process is collecting garbage right now; nothing done', { ran: false });
      else
        out.done(
          `removed ${report.manifests} untagged manifests, ${report.blobs} blobs (${report.bytes} bytes), ${report.uploads} abandoned uploads; ${report.orphans} of those blobs and uploads had no metadata (left by a crash)`,
          { ran: true, ...report },
        );
    });
}
