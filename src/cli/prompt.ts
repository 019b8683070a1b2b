import { Option, type Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { CliError, usageError } from './errors.ts';

/** Where a secret can come from on the command line. */
export interface SecretFlags {
  password?: string;
  passwordStdin?: boolean;
}

/** `--password` and `--password-stdin`; `what` says what is asked for, e.g. "the new password". */
export function secretOptions(command: Command, what: string): Command {
  return command
    .addOption(
      new Option('--password <password>', `${what} (asked for when not given)`).conflicts('passwordStdin'),
    )
    .option('--password-stdin', `read ${what} from stdin`);
}

const interactive = () => process.stdin.isTTY === true;

/**
 * The secret from `--password`, from stdin with `--password-stdin`, or typed at the terminal without
 * echo (twice when `confirm`, for a new password).
 */
export async function secretFrom(
  flags: SecretFlags,
  question: string,
  options: { confirm?: boolean } = {},
): Promise<string> {
  let secret: string;
  if (flags.passwordStdin) secret = (await readStdin()).replace(/\r?\n$/, '');
  else if (flags.password !== undefined) secret = flags.password;
  else {
    if (!interactive()) throw usageError('no password: give --password, or --password-stdin and pipe it in');
    secret = await askSecret(question);
    if (options.confirm && (await askSecret('Repeat it: ')) !== secret)
      throw usageError('the two passwords differ');
  }
  if (secret === '') throw usageError('the password is empty');
  return secret;
}

/** A line typed at the terminal; `missing` explains what to pass instead when there is no terminal. */
export async function askLine(question: string, missing: string): Promise<string> {
  if (!interactive()) throw usageError(missing);
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await terminal.question(question)).trim();
  } finally {
    terminal.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads keys in raw mode so the terminal does not echo them. */
function askSecret(question: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(question);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  return new Promise((resolve, reject) => {
    let typed: string[] = [];
    const finish = (error?: CliError) => {
      input.off('data', onKeys);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed.join(''));
    };
    const onKeys = (keys: string) => {
      for (const key of keys) {
        if (key === '\r' || key === '\n' || key === '\u0004') return finish();
        if (key === '\u0003') return finish(new CliError('SLW_ERR_CANCELLED', 'cancelled', 130));
        if (key === '\u007f' || key === '\b') typed = typed.slice(0, -1);
        else if (key >= ' ') typed.push(key);
      }
    };
    input.on('data', onKeys);
  });
}
