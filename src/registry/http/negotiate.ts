import { baseMediaType, manifestKindOf } from '../media-types.ts';

/** Media types a client's `Accept` names (parameters and q-values ignored), or null for "anything". */
export function acceptedMediaTypes(accept: string | string[] | undefined): Set<string> | null {
  if (accept === undefined) return null;
  const values = (Array.isArray(accept) ? accept : [accept]).flatMap((v) => v.split(','));
  const types = new Set(values.map((v) => baseMediaType(v)).filter((v) => v.length > 0));
  if (types.size === 0 || types.has('*/*') || types.has('application/*')) return null;
  return types;
}

export function acceptsIndexes(accepted: Set<string>): boolean {
  for (const type of accepted) if (manifestKindOf(type) === 'index') return true;
  return false;
}
