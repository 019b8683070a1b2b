import type { LineListener, OutputStream } from './executor.ts';
import { LineSplitter } from './output-lines.ts';
import type { SecretMasker } from './secret-mask.ts';

const tailLength = 20;

/**
 * Where an executor writes its output: every line is masked before the listener sees it, and the last
 * lines are kept for the error message of a failed step.
 */
export class BuildLog {
  readonly #masker: SecretMasker;
  readonly #listener: LineListener;
  readonly #tail: string[] = [];

  constructor(masker: SecretMasker, listener: LineListener) {
    this.#masker = masker;
    this.#listener = listener;
  }

  line(stream: OutputStream, text: string): void {
    const masked = this.#masker.mask(text);
    this.#tail.push(masked);
    if (this.#tail.length > tailLength) this.#tail.shift();
    this.#listener(stream, masked);
  }

  /** A splitter that writes the lines of a byte stream to this log; flush it when the stream ends. */
  splitter(stream: OutputStream): LineSplitter {
    return new LineSplitter((text) => this.line(stream, text));
  }

  /** The last lines written (masked), oldest first. */
  tail(): string[] {
    return [...this.#tail];
  }

  mask(text: string): string {
    return this.#masker.mask(text);
  }
}
