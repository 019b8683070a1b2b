import type { Command } from 'commander';
import { collect } from '../client.ts';
import { apiContext } from '../context.ts';
import { time, type Column } from '../output.ts';
import { isoTime, limitOption } from '../parse.ts';
import type { AuditEntryResource } from '../resources.ts';

interface AuditFlags {
  repository?: string;
  namespace?: string;
  actor?: string;
  kind?: string;
  since?: string;
  until?: string;
  limit: number;
}

const auditColumns: ReadonlyArray<Column<AuditEntryResource>> = [
  { header: 'when', value: (entry) => time(entry.occurredAt) },
  { header: 'kind', value: (entry) => entry.kind },
  { header: 'actor', value: (entry) => entry.actor },
  // The repository, or the namespace of a change to a user, an organization or its teams and robots.
  { header: 'scope', value: (entry) => entry.repository ?? entry.namespace },
  { header: 'target', value: (entry) => entry.target },
  { header: 'ok', value: (entry) => entry.success },
  { header: 'ip', value: (entry) => entry.ip },
];

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read the audit log');

  audit
    .command('query')
    .description(
      'list audit entries, newest first; users who are not superusers filter by a repository or namespace they administer, or by themselves as --actor',
    )
    .option('--repository <repository>', 'only entries about this repository (namespace/name)')
    .option('--namespace <namespace>', 'only entries about this user or organization and its repositories')
    .option('--actor <name>', 'only what this user or robot did')
    .option('--kind <kinds>', 'only these kinds, comma-separated, e.g. push_repo,delete_tag')
    .option(
      '--since <time>',
      'only entries at or after this time, e.g. 2025-06-01 or 2025-06-01T12:00:00Z',
      isoTime,
    )
    .option('--until <time>', 'only entries before this time', isoTime)
    .addOption(limitOption('entries', 50))
    .action(async (flags: AuditFlags, command: Command) => {
      const { api, out } = await apiContext(command);
      const { limit, ...filters } = flags;
      const page = await collect(limit, async (before: number | undefined, pageSize) => {
        const { entries, next } = await api.get<{ entries: AuditEntryResource[]; next?: number }>('/audit', {
          ...filters,
          before,
          limit: pageSize,
        });
        return { items: entries, next };
      });
      out.page(page, auditColumns, 'no audit entries match');
    });
}
