export const secretMask = '***';

/**
 * Replaces every occurrence of the given secrets in a text by `***`. A secret is also masked in its
 * URL-encoded form, as it appears in a clone URL with credentials. Longer secrets are masked first so
 * one that contains another is not left half visible. Secrets are plain text, not patterns.
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

/**
 * The secrets to mask for a registry credential: the token, and Basic auth (`user:token` in base64 and
 * base64url) as auth files and Authorization headers carry it. `SecretMasker` adds the URL-encoded forms.
 */
export function credentialForms(username: string, token: string): string[] {
  const basic = Buffer.from(`${username}:${token}`);
  return [token, basic.toString('base64'), basic.toString('base64url')];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
