export const secretMask = '***';

/**
 * Replaces every occurrence of the given secrets in a text by `***`. A secret is also masked in its
 * URL-encoded form, as it appears in a clone URL with credentials. Longer secrets are masked first so
 * one that contains another is not left half visible.
 */
export class SecretMasker {
  readonly #pattern: RegExp | null;

  constructor(secrets: Iterable<string>) {
    const variants = new Set<string>();
    for (const secret of secrets) {
      if (secret === '') continue;
      variants.add(secret);
      variants.add(encodeURIComponent(secret));
    }
    const sorted = [...variants].sort((a, b) => b.length - a.length);
    this.#pattern = sorted.length ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : null;
  }

  mask(text: string): string {
    return this.#pattern ? text.replace(this.#pattern, secretMask) : text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
