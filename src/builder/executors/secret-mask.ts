export const secretMask = '***';

/**
 * Replaces every occurrence of the given secret values with `***`. Longer values are replaced first, so a
 * secret that contains another is masked whole.
 */
export class SecretMasker {
  readonly #secrets: string[];

  constructor(secrets: Iterable<string>) {
    this.#secrets = [...new Set([...secrets].filter((secret) => secret.length > 0))].sort(
      (a, b) => b.length - a.length,
    );
  }

  mask(text: string): string {
    let masked = text;
    for (const secret of this.#secrets) masked = masked.replaceAll(secret, secretMask);
    return masked;
  }
}

/**
 * The forms a credential can take in tool output besides itself: Basic auth (`user:token` base64) as auth
 * files and Authorization headers carry it, and URL-encoded as it appears in a URL.
 */
export function credentialForms(username: string, token: string): string[] {
  const basic = `${username}:${token}`;
  return [
    token,
    encodeURIComponent(token),
    Buffer.from(basic).toString('base64'),
    Buffer.from(basic).toString('base64url'),
  ];
}
