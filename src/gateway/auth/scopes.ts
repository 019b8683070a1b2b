import type { RegistryAction } from '../../identity/permissions.ts';

/** One entry of a registry token's `access` claim, as the Docker token specification defines it. */
export interface AccessEntry {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

const knownActions = new Set(['pull', 'push', 'delete', '*']);

/**
 * Parses `scope` parameters such as `repository:acme/app:pull,push` or `registry:catalog:*`. A
 * resource type with a class (`repository(plugin):…`) is read as its type. Scopes that do not parse
 * are ignored, as the token specification allows: they simply grant nothing.
 */
export function parseScopes(values: readonly string[]): AccessEntry[] {
  const entries: AccessEntry[] = [];
  for (const value of values) {
    for (const scope of value.split(' ')) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) continue;
      const type = scope.slice(0, first).replace(/\(.*\)$/, '');
      const name = scope.slice(first + 1, last);
      const actions = scope
        .slice(last + 1)
        .split(',')
        .filter((action) => knownActions.has(action));
      if ((type === 'repository' || type === 'registry') && name && actions.length > 0) {
        entries.push({ type, name, actions: [...new Set(actions)] });
      }
    }
  }
  return entries;
}

/** `*` on a repository asks for everything. */
export function requestedActions(entry: AccessEntry): RegistryAction[] {
  return entry.actions.includes('*') ? ['pull', 'push', 'delete'] : (entry.actions as RegistryAction[]);
}

/** The challenge scope a client needs for a request: `repository:acme/app:pull,push`. */
export function scopeString(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}
