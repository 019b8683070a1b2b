import { Option, type Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { time, type Column } from '../output.ts';
import {
  accountColumns,
  type AccountResource,
  type MemberResource,
  type TeamResource,
} from '../resources.ts';

const organizationColumns = accountColumns.filter((column) => column.header !== 'superuser');

const teamColumns: ReadonlyArray<Column<TeamResource>> = [
  { header: 'team', value: (team) => team.name },
  { header: 'role', value: (team) => team.role },
  { header: 'members', value: (team) => team.members },
  { header: 'description', value: (team) => team.description },
];

const memberColumns: ReadonlyArray<Column<MemberResource>> = [
  { header: 'name', value: (member) => member.name },
  { header: 'kind', value: (member) => member.kind },
];

interface TeamFlags {
  role: string;
  description?: string;
}

const teamPath = (org: string, team: string) => path`/organizations/${org}/teams/${team}`;

export function registerOrg(program: Command): void {
  const org = program.command('org').description('manage organizations, their teams and team members');

  org
    .command('create')
    .description('create an organization; you become a member of its "owners" team')
    .argument('<org>', 'organization name')
    .option('--email <email>', 'contact email')
    .action(async (name: string, flags: { email?: string }, command: Command) => {
      const { api, out } = await apiContext(command);
      const created = await api.post<AccountResource>('/organizations', { name, email: flags.email });
      out.done(`created organization ${created.name}`, created);
    });

  org
    .command('list')
    .description('list the organizations you belong to (all of them for superusers)')
    .action(async (_flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { organizations } = await api.get<{ organizations: AccountResource[] }>('/organizations');
      out.list(organizations, organizationColumns, 'no organizations');
    });

  org
    .command('show')
    .description('show an organization and its teams')
    .argument('<org>', 'organization name')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const organization = await api.get<AccountResource>(path`/organizations/${name}`);
      const { teams } = await api.get<{ teams: TeamResource[] }>(path`/organizations/${name}/teams`);
      out.compose({ ...organization, teams }, () => {
        out.record(organization, [
          { header: 'name', value: (account) => account.name },
          { header: 'email', value: (account) => account.email },
          { header: 'created', value: (account) => time(account.createdAt) },
        ]);
        out.line('');
        out.list(teams, teamColumns, 'no teams');
      });
    });

  org
    .command('delete')
    .description('delete an organization (its repositories must be deleted first)')
    .argument('<org>', 'organization name')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(path`/organizations/${name}`);
      out.done(`deleted organization ${name}`, { deleted: name });
    });

  registerTeam(org);
  registerMember(org);
}

function registerTeam(org: Command): void {
  const team = org.command('team').description("manage an organization's teams");

  team
    .command('put')
    .description('create a team, or change its role or description')
    .argument('<org>', 'organization name')
    .argument('<team>', 'team name')
    .addOption(
      new Option(
        '--role <role>',
        'member: reads what the team is granted; creator: also creates repositories; admin: administers the organization',
      )
        .choices(['member', 'creator', 'admin'])
        .makeOptionMandatory(),
    )
    .option('--description <text>', 'what the team is for')
    .action(async (orgName: string, teamName: string, flags: TeamFlags, command: Command) => {
      const { api, out } = await apiContext(command);
      const saved = await api.put<TeamResource>(teamPath(orgName, teamName), flags);
      out.done(`team ${orgName}/${saved.name} has role ${saved.role}`, saved);
    });

  team
    .command('list')
    .description("list an organization's teams")
    .argument('<org>', 'organization name')
    .action(async (orgName: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { teams } = await api.get<{ teams: TeamResource[] }>(path`/organizations/${orgName}/teams`);
      out.list(teams, teamColumns, `${orgName} has no teams`);
    });

  team
    .command('delete')
    .description('delete a team')
    .argument('<org>', 'organization name')
    .argument('<team>', 'team name')
    .action(async (orgName: string, teamName: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(teamPath(orgName, teamName));
      out.done(`deleted team ${orgName}/${teamName}`, { organization: orgName, deleted: teamName });
    });
}

function registerMember(org: Command): void {
  const member = org.command('member').description("manage the members of an organization's teams");

  member
    .command('add')
    .description("add a user, or one of the organization's robots, to a team")
    .argument('<org>', 'organization name')
    .argument('<team>', 'team name')
    .argument('<member>', 'username, or robot as org+name')
    .action(async (orgName: string, teamName: string, name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.put(teamPath(orgName, teamName) + path`/members/${name}`);
      out.done(`added ${name} to ${orgName}/${teamName}`, {
        organization: orgName,
        team: teamName,
        added: name,
      });
    });

  member
    .command('remove')
    .description('remove a member from a team')
    .argument('<org>', 'organization name')
    .argument('<team>', 'team name')
    .argument('<member>', 'username, or robot as org+name')
    .action(async (orgName: string, teamName: string, name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(teamPath(orgName, teamName) + path`/members/${name}`);
      out.done(`removed ${name} from ${orgName}/${teamName}`, {
        organization: orgName,
        team: teamName,
        removed: name,
      });
    });

  member
    .command('list')
    .description("list a team's members")
    .argument('<org>', 'organization name')
    .argument('<team>', 'team name')
    .action(async (orgName: string, teamName: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { members } = await api.get<{ members: MemberResource[] }>(
        `${teamPath(orgName, teamName)}/members`,
      );
      out.list(members, memberColumns, `${orgName}/${teamName} has no members`);
    });
}
