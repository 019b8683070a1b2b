import { InvalidArgumentError, Option } from 'commander';
import { usageError } from './errors.ts';

/** Option parser for counts and limits. */
export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1)
    throw new InvalidArgumentError('expected a positive integer');
  return number;
}

/** Option parser for `--since` and `--until`: any date JavaScript reads, sent on as ISO. */
export function isoTime(value: string): string {
  const time = new Date(value);
  if (Number.isNaN(time.getTime()))
    throw new InvalidArgumentError('expected a date and time, e.g. 2025-06-01 or 2025-06-01T12:00:00Z');
  return time.toISOString();
}

/**
 * Splits a qualified name at the first `separator` into the namespace and the rest, both non-empty:
 * `acme+ci` into acme and ci, `acme/team/app` into acme and team/app.
 */
export function splitName(name: string, separator: string, usage: string): [string, string] {
  const at = name.indexOf(separator);
  if (at <= 0 || at === name.length - 1) throw usageError(`"${name}" ${usage}`);
  return [name.slice(0, at), name.slice(at + 1)];
}

/** `--limit` of a listing that follows the gateway's pages. */
export function limitOption(what: string, fallback: number): Option {
  return new Option('--limit <n>', `the most ${what} to show`).argParser(positiveInteger).default(fallback);
}

/** `--expires-in-days`: a number of days, or `never`. */
export type Expiry = number | 'never';

/**
 * `--expires-in-days`, for the personal tokens `login` and `token create` make. "never" stays a word
 * here (commander turns a parser's null into ''); `expiresInDays` turns it into the API's null.
 */
export function expiryOption(): Option {
  return new Option('--expires-in-days <days>', 'days until the token expires, or "never"')
    .argParser((value): Expiry => (value === 'never' ? value : positiveInteger(value)))
    .default(90);
}

/** What POST /user/tokens takes: days, or null for a token that does not expire. */
export const expiresInDays = (expiry: Expiry): number | null => (expiry === 'never' ? null : expiry);
