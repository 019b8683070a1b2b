import type { Command } from 'commander';
import { hostname } from 'node:os';
import { ApiClient, basic, bearer, path } from '../client.ts';
import { apiContext } from '../context.ts';
import {
  credentialsPath,
  readLogin,
  removeLogin,
  saveLogin,
  type StoredLogin,
} from '../credentials-store.ts';
import { CliError, usageError } from '../errors.ts';
import { expiry, outputOf, type Output } from '../output.ts';
import { expiresInDays, expiryOption, type Expiry } from '../parse.ts';
import { askLine, secretFrom, secretOptions, type SecretFlags } from '../prompt.ts';
import type { AccountResource, IssuedTokenResource } from '../resources.ts';

interface LoginFlags extends SecretFlags {
  username?: string;
  expiresInDays: Expiry;
}

/** What the gateway accepts as the username of a bare token. */
const tokenUsername = '$token';

export function registerLogin(program: Command): void {
  secretOptions(
    program
      .command('login')
      .description(
        'sign in to a gateway: creates a personal access token for this machine and stores it in your config directory',
      )
      .argument('<url>', 'the gateway, e.g. https://registry.example.com')
      .option('--username <name>', 'your username (asked for when not given)'),
    'your password or a token (slw_…)',
  )
    .addOption(expiryOption())
    .action(async (url: string, flags: LoginFlags, command: Command) => {
      const out = outputOf(command);
      const gateway = gatewayUrl(url);
      const { username, secret } = await credentialsFrom(flags);
      const issued = await new ApiClient(gateway, basic(username, secret)).post<IssuedTokenResource>(
        '/user/tokens',
        { name: `slipway-cli@${hostname()}`, expiresInDays: expiresInDays(flags.expiresInDays) },
      );
      const user = await new ApiClient(gateway, bearer(issued.token)).get<AccountResource>('/user');
      await replaceLogin({ url: gateway, username: user.name, token: issued.token, tokenId: issued.id }, out);
      out.done(
        `logged in to ${gateway} as ${user.name}; token "${issued.name}" ${expiry(issued.expiresAt)}, stored in ${credentialsPath()}`,
        { url: gateway, username: user.name, tokenId: issued.id, expiresAt: issued.expiresAt },
      );
    });

  program
    .command('logout')
    .description('revoke the stored login token and remove it from your config directory')
    .action(async (_flags: unknown, command: Command) => {
      const out = outputOf(command);
      const login = await readLogin();
      if (!login) return out.done('not logged in', { loggedOut: false });
      await revokeStoredToken(login);
      await removeLogin();
      out.done(`logged out of ${login.url}; its token is revoked`, { loggedOut: true, url: login.url });
    });

  program
    .command('whoami')
    .description('show the account the CLI acts as')
    .action(async (_flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const user = await api.get<AccountResource>('/user');
      out.record({ ...user, url: api.baseUrl }, [
        { header: 'name', value: (account) => account.name },
        { header: 'kind', value: (account) => account.kind },
        { header: 'email', value: (account) => account.email },
        { header: 'superuser', value: (account) => account.superuser },
        { header: 'gateway', value: (account) => account.url },
      ]);
    });
}

/** The username and password (or token) to log in with, from the flags or asked for. */
async function credentialsFrom(flags: LoginFlags): Promise<{ username: string; secret: string }> {
  let username = flags.username;
  if (username === undefined && flags.password === undefined && !flags.passwordStdin)
    username = await askLine('Username: ', 'no username: give --username');
  const secret = await secretFrom(flags, 'Password (or token): ');
  // A token identifies its account by itself.
  username ??= secret.startsWith('slw_') ? tokenUsername : undefined;
  if (username === undefined) throw usageError('no username: give --username');
  return { username, secret };
}

/** Stores the new login, then revokes the token of the one it replaces. */
async function replaceLogin(login: StoredLogin, out: Output): Promise<void> {
  const previous = await readLogin().catch(() => null);
  await saveLogin(login);
  if (!previous || previous.token === login.token) return;
  await revokeStoredToken(previous).catch((error: Error) =>
    out.note(`could not revoke the token of the previous login to ${previous.url}: ${error.message}`),
  );
}

/** A token that no longer works (expired, revoked already) needs no revoking. */
async function revokeStoredToken(login: StoredLogin): Promise<void> {
  try {
    await new ApiClient(login.url, bearer(login.token)).delete(path`/user/tokens/${login.tokenId}`);
  } catch (error) {
    const gone =
      error instanceof CliError &&
      (error.code === 'SLW_ERR_UNAUTHENTICATED' || error.code === 'SLW_ERR_NOT_FOUND');
    if (!gone) throw error;
  }
}

/** `registry.example.com` means https; a path or trailing slash is dropped. */
function gatewayUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`);
  } catch {
    throw usageError(`"${input}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`"${input}" is not an http(s) URL`);
  return url.origin;
}
