import type { Command } from 'commander';
import { configFlag, dataFlag, withLocalServices, type LocalConfigFlags } from '../local-config.ts';
import { outputOf } from '../output.ts';

export function registerEvict(program: Command): void {
  program
    .command('evict')
    .description(
      'evict the least recently pulled cached images of upstreams over their storage budget once, then exit',
    )
    .option(...dataFlag)
    .option(...configFlag)
    .action(async (flags: LocalConfigFlags, command: Command) => {
      const out = outputOf(command);
      const report = await withLocalServices(flags, (services) => services.cacheEviction.run());
      if (report === null) {
        out.done('another process is evicting cache entries right now; nothing done', { ran: false });
        return;
      }
      const lines = report.upstreams.map((u) => {
        const budget = u.budget === null ? 'no budget' : `budget ${u.budget} bytes`;
        const evicted = u.evicted.length > 0 ? `, evicted ${u.evicted.length} (${u.evictedBytes} bytes)` : '';
        const over = u.overBudget ? ', still over budget: the rest is pinned' : '';
        return `${u.upstream}: ${u.bytes} bytes cached, ${budget}${evicted}${over}`;
      });
      lines.push(`deleted ${report.blobsDeleted} blobs (${report.bytesDeleted} bytes) nothing else used`);
      out.done(lines.join('\n'), { ran: true, ...report });
    });
}
