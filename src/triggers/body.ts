import { WebhookPayloadError } from './errors.ts';

/**
 * The delivery's raw body as text. Signatures are computed over the exact bytes, so a body that is not
 * valid UTF-8 is refused rather than silently altered.
 */
export function bodyText(rawBody: Buffer | string): string {
  if (typeof rawBody === 'string') return rawBody;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(rawBody);
  } catch {
    throw new WebhookPayloadError('the request body is not valid UTF-8');
  }
}

/** Parses a JSON body; an empty or non-JSON body is a 400. */
export function parseJsonBody(rawBody: Buffer | string): unknown {
  const text = bodyText(rawBody);
  if (text.trim() === '') throw new WebhookPayloadError('the request body is empty; expected a JSON payload');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new WebhookPayloadError(`the request body is not JSON: ${(error as Error).message}`);
  }
}
