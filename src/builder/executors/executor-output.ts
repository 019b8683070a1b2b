import { LineSplitter } from '../output/line-splitter.ts';
import type { OutputStream } from '../output/output-stream.ts';
import type { SecretMasker } from '../output/secret-masker.ts';
import type { LineListener } from './executor.ts';

const tailLength = 20;

/**
 * Where an executor writes the output of its steps: every line is masked before the listener sees it,
 * and the last lines are kept for the error message of a failed step.
 */
export class ExecutorOutput {
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

  /** A splitter that writes the lines of a byte stream here; `end` it when the stream ends. */
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
