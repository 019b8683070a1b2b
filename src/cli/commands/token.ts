import type { Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { expiry, time, type Column } from '../output.ts';
import { expiresInDays, expiryOption, positiveInteger, type Expiry } from '../parse.ts';
import type { IssuedTokenResource, TokenResource } from '../resources.ts';

const tokenColumns: ReadonlyArray<Column<TokenResource>> = [
  { header: 'id', value: (token) => token.id },
  { header: 'name', value: (token) => token.name },
  { header: 'kind', value: (token) => token.kind },
  { header: 'created', value: (token) => time(token.createdAt) },
  { header: 'expires', value: (token) => time(token.expiresAt) ?? 'never' },
  { header: 'last used', value: (token) => time(token.lastUsedAt) ?? 'never' },
];

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('manage your personal access tokens: passwords for docker login, scripts and the API');

  token
    .command('create')
    .description('create a personal access token and print it (once)')
    .argument('<name>', 'what the token is for, e.g. laptop or deploy-script')
    .addOption(expiryOption())
    .action(async (name: string, flags: { expiresInDays: Expiry }, command: Command) => {
      const { api, out } = await apiContext(command);
      const issued = await api.post<IssuedTokenResource>('/user/tokens', {
        name,
        expiresInDays: expiresInDays(flags.expiresInDays),
      });
      out.secret(
        `created token ${issued.id} "${issued.name}"; it ${expiry(issued.expiresAt)}:`,
        issued.token,
        issued,
      );
    });

  token
    .command('list')
    .description('list your tokens (never their secrets)')
    .action(async (_flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { tokens } = await api.get<{ tokens: TokenResource[] }>('/user/tokens');
      out.list(tokens, tokenColumns, 'no tokens');
    });

  token
    .command('revoke')
    .description('revoke one of your tokens; it stops working at once')
    .argument('<id>', 'the id "slipway token list" shows', positiveInteger)
    .action(async (id: number, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(path`/user/tokens/${id}`);
      out.done(`revoked token ${id}`, { revoked: id });
    });
}
