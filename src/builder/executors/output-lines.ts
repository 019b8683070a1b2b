import { StringDecoder } from 'node:string_decoder';

/**
 * Turns a byte stream into whole lines: chunks may end mid-line or mid-character, and the last line
 * may have no newline (`flush` hands it over). A trailing `\r` (CRLF output) is dropped.
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #emit: (line: string) => void;
  #pending = '';

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  push(chunk: Buffer | string): void {
    const text = this.#pending + (typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    const lines = text.split('\n');
    this.#pending = lines.pop()!;
    for (const line of lines) this.#emit(stripCarriageReturn(line));
  }

  flush(): void {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    if (rest) this.#emit(stripCarriageReturn(rest));
  }
}

function stripCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
