import type { Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { splitName } from '../parse.ts';
import { accountColumns, type AccountResource } from '../resources.ts';

const robotColumns = accountColumns.filter(
  (column) => column.header !== 'superuser' && column.header !== 'email',
);

/** Robots are named `<namespace>+<name>`; the API addresses them by the two parts. */
function robotPath(fullName: string): string {
  const [namespace, short] = splitName(
    fullName,
    '+',
    'is not a robot name: robots are namespace+name, e.g. acme+ci',
  );
  return path`/namespaces/${namespace}/robots/${short}`;
}

export function registerRobot(program: Command): void {
  const robot = program
    .command('robot')
    .description('manage robot accounts: tokens for CI and machines, owned by a user or an organization');

  robot
    .command('create')
    .description('create a robot and print its token (once)')
    .argument('<robot>', 'namespace+name, e.g. acme+ci')
    .option('--description <text>', 'what the robot is for')
    .action(async (name: string, flags: { description?: string }, command: Command) => {
      const { api, out } = await apiContext(command);
      const created = await api.put<AccountResource & { token: string }>(robotPath(name), flags);
      out.secret(`created robot ${created.name}; its token:`, created.token, created);
    });

  robot
    .command('list')
    .description("list a namespace's robots")
    .argument('<namespace>', 'your username or an organization you administer')
    .action(async (namespace: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { robots } = await api.get<{ robots: AccountResource[] }>(path`/namespaces/${namespace}/robots`);
      out.list(robots, robotColumns, `${namespace} has no robots`);
    });

  robot
    .command('show')
    .description('show a robot')
    .argument('<robot>', 'namespace+name')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      out.record(await api.get<AccountResource>(robotPath(name)), robotColumns);
    });

  robot
    .command('delete')
    .description('delete a robot; its token stops working')
    .argument('<robot>', 'namespace+name')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(robotPath(name));
      out.done(`deleted robot ${name}`, { deleted: name });
    });

  robot
    .command('regenerate')
    .description('give a robot a new token; the old one stops working at once')
    .argument('<robot>', 'namespace+name')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const regenerated = await api.post<{ name: string; token: string }>(`${robotPath(name)}/regenerate`);
      out.secret(`new token for ${regenerated.name}:`, regenerated.token, regenerated);
    });
}
