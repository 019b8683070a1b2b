import { Argument, type Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { usageError } from '../errors.ts';
import { configFlag, dataFlag, loadLocalConfig, type LocalConfigFlags } from '../local-config.ts';
import { outputOf } from '../output.ts';
import { secretFrom, secretOptions, type SecretFlags } from '../prompt.ts';
import { accountColumns, type AccountResource } from '../resources.ts';

interface CreateUserFlags extends SecretFlags {
  email?: string;
  superuser?: boolean;
}

export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('administer the gateway (superusers)');
  const user = admin.command('user').description('manage user accounts');

  secretOptions(
    user
      .command('create')
      .description('create a user')
      .argument('<name>', 'username')
      .option('--email <email>', 'email address')
      .option('--superuser', 'make the user a superuser'),
    "the user's password",
  ).action(async (name: string, flags: CreateUserFlags, command: Command) => {
    const { api, out } = await apiContext(command);
    const password = await secretFrom(flags, `Password for ${name}: `, { confirm: true });
    const created = await api.post<AccountResource>('/users', {
      name,
      password,
      email: flags.email,
      superuser: flags.superuser === true,
    });
    out.done(`created user ${created.name}${created.superuser ? ' (superuser)' : ''}`, created);
  });

  user
    .command('list')
    .description('list users')
    .action(async (_flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { users } = await api.get<{ users: AccountResource[] }>('/users');
      out.list(users, accountColumns, 'no users');
    });

  user
    .command('delete')
    .description('delete a user (their repositories must be deleted first)')
    .argument('<name>', 'username')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(path`/users/${name}`);
      out.done(`deleted user ${name}`, { deleted: name });
    });

  secretOptions(
    user.command('set-password').description("change a user's password").argument('<name>', 'username'),
    'the new password',
  ).action(async (name: string, flags: SecretFlags, command: Command) => {
    const { api, out } = await apiContext(command);
    const password = await secretFrom(flags, `New password for ${name}: `, { confirm: true });
    const changed = await api.patch<AccountResource>(path`/users/${name}`, { password });
    out.done(`changed the password of ${changed.name}`, changed);
  });

  user
    .command('set-superuser')
    .description('make a user a superuser, or no longer one')
    .argument('<name>', 'username')
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .action(async (name: string, state: 'on' | 'off', _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const changed = await api.patch<AccountResource>(path`/users/${name}`, { superuser: state === 'on' });
      out.done(`${changed.name} is ${changed.superuser ? 'now' : 'no longer'} a superuser`, changed);
    });

  admin
    .command('rotate-signing-key')
    .description(
      'write a new registry token signing key into the data directory (offline; run where the gateway keeps its data)',
    )
    .option(...dataFlag)
    .option(...configFlag)
    .action(async (flags: LocalConfigFlags, command: Command) => {
      const out = outputOf(command);
      const config = await loadLocalConfig(flags);
      if (config.auth.signingKeys.length > 0) {
        throw usageError(
          'the configuration names its signing keys (auth.signingKeys): rotate by putting a new PEM file first in that list',
        );
      }
      // Loaded here, not at start: the key code is needed by this command only.
      const { rotateSigningKey } = await import('../../gateway/auth/signing-keys.ts');
      const file = await rotateSigningKey(config.dataDir);
      out.done(
        `wrote ${file}\nRestart the gateway to sign registry tokens with it; tokens signed with the older keys stay valid until they expire.`,
        { file },
      );
    });
}
