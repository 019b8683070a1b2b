import type { z } from 'zod';
import { SlipwayError } from '../errors.ts';

/**
 * A webhook delivery the gateway refuses. Nothing is queued for it; the route answers `status` with the
 * message, which says what was wrong without echoing secrets or signatures.
 */
export class WebhookRefusedError extends SlipwayError {
  readonly status: number;
  constructor(code: `SLW_ERR_WEBHOOK_${string}`, status: number, message: string) {
    super(code, message);
    this.status = status;
  }
}

/** Why a delivery could not be authenticated. */
export type WebhookAuthProblem = 'missing' | 'malformed' | 'mismatch';

/**
 * 401: the signature or token header is absent, not in the expected shape, or does not match the
 * trigger's secret. `header` names the header the sender should have set.
 */
export class WebhookAuthError extends WebhookRefusedError {
  readonly problem: WebhookAuthProblem;
  readonly header: string;
  constructor(problem: WebhookAuthProblem, header: string, message: string) {
    super('SLW_ERR_WEBHOOK_UNAUTHENTICATED', 401, message);
    this.problem = problem;
    this.header = header;
  }
}

/** 400: the body is not JSON, or lacks or mistypes a field the trigger reads. */
export class WebhookPayloadError extends WebhookRefusedError {
  constructor(message: string) {
    super('SLW_ERR_WEBHOOK_PAYLOAD', 400, message);
  }
}

/** `invalid GitHub push payload: repository.clone_url: expected a string; after: …`. */
export function payloadError(what: string, error: z.ZodError): WebhookPayloadError {
  const problems = error.issues.map((issue) =>
    issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message,
  );
  return new WebhookPayloadError(`invalid ${what}: ${problems.join('; ')}`);
}
