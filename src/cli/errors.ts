import { SlipwayError } from '../errors.ts';

/**
 * What a command reports before it exits: the message goes to stderr, and the exit status is 2 when
 * the request or the input was wrong (what the server answers with 4xx) and 1 when something else
 * failed (the server, the network, the file system).
 */
export class CliError extends SlipwayError {
  readonly exitCode: number;
  constructor(code: `SLW_ERR_${string}`, message: string, exitCode: number, options?: ErrorOptions) {
    super(code, message, options);
    this.exitCode = exitCode;
  }
}

/** Input the command cannot work with. */
export const usageError = (message: string) => new CliError('SLW_ERR_USAGE', message, 2);
