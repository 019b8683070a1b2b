import { invalid } from '../errors.ts';

/** A user's or an organization's name: one repository path component, so it can be a namespace. */
export type AccountName = string & { readonly __brand: 'AccountName' };
/** `<namespace>+<short name>`. */
export type RobotName = string & { readonly __brand: 'RobotName' };
export type TeamName = string & { readonly __brand: 'TeamName' };

const namespacePattern = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const robotShortPattern = /^[a-z][a-z0-9_]{0,63}$/;
const teamPattern = /^[a-z][a-z0-9_]{1,63}$/;

export function parseAccountName(value: string): AccountName {
  if (value.length < 2 || value.length > 64 || !namespacePattern.test(value)) {
    throw invalid(
      `"${value.slice(0, 80)}" is not a valid user or organization name: 2 to 64 lowercase letters and digits, with . _ or - between them`,
    );
  }
  return value as AccountName;
}

export function robotName(namespace: AccountName, short: string): RobotName {
  if (!robotShortPattern.test(short)) {
    throw invalid(
      `"${short.slice(0, 80)}" is not a valid robot name: up to 64 lowercase letters, digits and _, starting with a letter`,
    );
  }
  return `${namespace}+${short}` as RobotName;
}

/** Splits `ns+short`; null when the name is not a robot's. */
export function splitRobotName(value: string): { namespace: AccountName; short: string } | null {
  const plus = value.indexOf('+');
  if (plus < 0) return null;
  try {
    const namespace = parseAccountName(value.slice(0, plus));
    robotName(namespace, value.slice(plus + 1));
    return { namespace, short: value.slice(plus + 1) };
  } catch {
    return null;
  }
}

export function parseTeamName(value: string): TeamName {
  if (!teamPattern.test(value)) {
    throw invalid(
      `"${value.slice(0, 80)}" is not a valid team name: 2 to 64 lowercase letters, digits and _, starting with a letter`,
    );
  }
  return value as TeamName;
}

/** The namespace of a repository is its first path component; `alpine` alone has none. */
export function namespaceOf(repository: string): string | null {
  const slash = repository.indexOf('/');
  return slash > 0 ? repository.slice(0, slash) : null;
}
