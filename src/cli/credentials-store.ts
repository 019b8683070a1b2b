import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { CliError } from './errors.ts';

/** What `slipway login` keeps: the gateway, who signed in, and the personal access token it created. */
export interface StoredLogin {
  url: string;
  username: string;
  token: string;
  /** The token's id, so `slipway logout` can revoke it. */
  tokenId: number;
}

/**
 * Checked by hand rather than with a zod schema: loading zod would add a seventh of a second to the
 * start of every command.
 */
function isStoredLogin(value: unknown): value is StoredLogin {
  if (typeof value !== 'object' || value === null) return false;
  const login = value as Record<string, unknown>;
  const filled = (key: string) => typeof login[key] === 'string' && login[key] !== '';
  return filled('url') && filled('username') && filled('token') && Number.isSafeInteger(login.tokenId);
}

/** `$XDG_CONFIG_HOME/slipway/credentials.json`, else `~/.config/slipway/credentials.json`. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  // The XDG base directory spec says to ignore a relative XDG_CONFIG_HOME.
  const configHome =
    env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(configHome, 'slipway', 'credentials.json');
}

export async function readLogin(file = credentialsPath()): Promise<StoredLogin | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError('SLW_ERR_CREDENTIALS', `cannot read ${file}: ${(error as Error).message}`, 1);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isStoredLogin(parsed)) {
    throw new CliError(
      'SLW_ERR_CREDENTIALS',
      `${file} is not a Slipway login; remove it and run "slipway login URL" again`,
      1,
    );
  }
  return parsed;
}

/** Only the user may read the token: the directory is 0700 and the file 0600, replaced atomically. */
export async function saveLogin(login: StoredLogin, file = credentialsPath()): Promise<void> {
  const directory = dirname(file);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await chmod(directory, 0o700);
  const partial = `${file}.${process.pid}.tmp`;
  await writeFile(partial, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  await rename(partial, file);
}

export async function removeLogin(file = credentialsPath()): Promise<void> {
  await rm(file, { force: true });
}
