import { baseMediaType, manifestKindOf } from '../media-types.ts';

const parsedAccept = new Map<string, ReadonlySet<string> | null>();

/**
 * Media types a client's `Accept` names (parameters and q-values ignored), or null for "anything".
 * Clients send a handful of distinct values, so parses are remembered (a bounded number of them).
 */
export function acceptedMediaTypes(accept: string | string[] | undefined): ReadonlySet<string> | null {
  if (accept === undefined) return null;
  const key = Array.isArray(accept) ? accept.join(',') : accept;
  let parsed = parsedAccept.get(key);
  if (parsed === undefined) {
    parsed = parseAccept(accept);
    if (parsedAccept.size >= 256) parsedAccept.clear();
    parsedAccept.set(key, parsed);
  }
  return parsed;
}

function parseAccept(accept: string | string[]): ReadonlySet<string> | null {
  const values = (Array.isArray(accept) ? accept : [accept]).flatMap((v) => v.split(','));
  const types = new Set(values.map((v) => baseMediaType(v)).filter((v) => v.length > 0));
  if (types.size === 0 || types.has('*/*') || types.has('application/*')) return null;
  return types;
}

export function acceptsIndexes(accepted: ReadonlySet<string>): boolean {
  for (const type of accepted) if (manifestKindOf(type) === 'index') return true;
  return false;
}
