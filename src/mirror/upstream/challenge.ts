/**
 * `WWW-Authenticate` as RFC 9110 §11.6.1 writes it: one or more challenges, each a scheme followed by
 * either a token68 or comma-separated `name=value` parameters, values being tokens or quoted strings
 * (which may hold commas, and `\` escapes). Several challenges may share one header line.
 */
export interface Challenge {
  /** Lowercased, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameter names lowercased; the first occurrence of a repeated name wins. */
  params: Readonly<Record<string, string>>;
  token68?: string;
}

export class MalformedChallengeError extends Error {
  constructor(header: string, position: number, expected: string) {
    super(`malformed WWW-Authenticate "${header.slice(0, 200)}": expected ${expected} at ${position}`);
    this.name = 'MalformedChallengeError';
  }
}

/** Parses every challenge of one or more `WWW-Authenticate` header values; throws `MalformedChallengeError`. */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((value) => parseChallenges(value));
  return new ChallengeReader(header).readAll();
}

const tokenChar = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const token68Pattern = /[A-Za-z0-9\-._~+/]+=*/y;

class ChallengeReader {
  readonly #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text;
  }

  readAll(): Challenge[] {
    const challenges: Challenge[] = [];
    for (;;) {
      this.#skip(/[ \t,]/);
      if (this.#done()) return challenges;
      const scheme = this.#token();
      if (!scheme) throw this.#error('an authentication scheme');
      challenges.push(this.#challenge(scheme.toLowerCase()));
    }
  }

  #challenge(scheme: string): Challenge {
    this.#skip(/[ \t]/);
    const token68 = this.#token68();
    if (token68 !== undefined) return { scheme, params: {}, token68 };
    const params: Record<string, string> = {};
    for (;;) {
      this.#skip(/[ \t]/);
      const start = this.#at;
      const name = this.#token();
      this.#skip(/[ \t]/);
      if (!name || this.#peek() !== '=') {
        // Not a parameter: the next challenge's scheme (or the end).
        this.#at = start;
        return { scheme, params };
      }
      this.#at++;
      this.#skip(/[ \t]/);
      const quoted = this.#peek() === '"';
      const value = quoted ? this.#quoted() : this.#token();
      if (!quoted && value === '') throw this.#error(`a value for "${name}"`);
      const key = name.toLowerCase();
      if (!(key in params)) params[key] = value;
      this.#skip(/[ \t]/);
      if (this.#done()) return { scheme, params };
      if (this.#peek() !== ',') throw this.#error('"," between parameters');
      this.#skip(/[ \t,]/);
    }
  }

  /** A token68 is the whole credential: it is followed only by the end or a comma. */
  #token68(): string | undefined {
    token68Pattern.lastIndex = this.#at;
    const match = token68Pattern.exec(this.#text);
    if (!match) return undefined;
    let end = this.#at + match[0].length;
    while (end < this.#text.length && (this.#text[end] === ' ' || this.#text[end] === '\t')) end++;
    if (end < this.#text.length && this.#text[end] !== ',') return undefined;
    // `realm=` followed by a comma is an empty parameter, which is not allowed, so token68 it is.
    this.#at = end;
    return match[0];
  }

  #quoted(): string {
    const start = this.#at;
    this.#at++;
    let value = '';
    while (!this.#done()) {
      const char = this.#text[this.#at++]!;
      if (char === '"') return value;
      if (char === '\\') {
        if (this.#done()) break;
        value += this.#text[this.#at++];
      } else {
        value += char;
      }
    }
    this.#at = start;
    throw this.#error('a closing quote');
  }

  #token(): string {
    const start = this.#at;
    while (!this.#done() && tokenChar.test(this.#text[this.#at]!)) this.#at++;
    return this.#text.slice(start, this.#at);
  }

  #skip(chars: RegExp): void {
    while (!this.#done() && chars.test(this.#text[this.#at]!)) this.#at++;
  }

  #peek(): string | undefined {
    return this.#text[this.#at];
  }

  #done(): boolean {
    return this.#at >= this.#text.length;
  }

  #error(expected: string): MalformedChallengeError {
    return new MalformedChallengeError(this.#text, this.#at, expected);
  }
}
