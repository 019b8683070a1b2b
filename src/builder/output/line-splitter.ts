import { StringDecoder } from 'node:string_decoder';

/** Characters a line may grow to before `LineSplitter` passes it on cut. */
export const defaultMaxLineLength = 16_384;

/**
 * Turns a process's output chunks into whole lines, so that secrets are masked line by line and never
 * escape by straddling two chunks. Chunks may end mid-line or mid-character. A `\r\n` or `\n` ends a line;
 * the last line may have no line break (`end` passes it on). A line that grows past `maxLineLength`
 * without ending is passed on as it is then (consumers that store lines cut it to the limit with a
 * marker) and the rest of it, up to the next line break, is dropped, so a process printing without line
 * breaks cannot fill memory.
 */
export class LineSplitter {
  readonly #onLine: (line: string) => void;
  readonly #maxLineLength: number;
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';
  #skippingRestOfLine = false;

  constructor(onLine: (line: string) => void, options: { maxLineLength?: number } = {}) {
    this.#onLine = onLine;
    this.#maxLineLength = options.maxLineLength ?? defaultMaxLineLength;
  }

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const pieces = (this.#partial + text).split('\n');
    this.#partial = pieces.pop()!;
    for (const piece of pieces) {
      if (this.#skippingRestOfLine) this.#skippingRestOfLine = false;
      else this.#onLine(stripCarriageReturn(piece));
    }
    if (this.#partial.length > this.#maxLineLength) {
      if (!this.#skippingRestOfLine) this.#onLine(this.#partial);
      this.#partial = '';
      this.#skippingRestOfLine = true;
    }
  }

  /** Passes on what is left of the last line, if anything. Call it when the output ends. */
  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = '';
    if (rest !== '' && !this.#skippingRestOfLine) this.#onLine(stripCarriageReturn(rest));
    this.#skippingRestOfLine = false;
  }
}

function stripCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
