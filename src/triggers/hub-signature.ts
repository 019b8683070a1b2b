import { Webhooks } from '@octokit/webhooks';
import { ConfigError } from '../errors.ts';
import { bodyText } from './body.ts';
import { WebhookAuthError, WebhookPayloadError } from './errors.ts';

/*
 * GitHub's delivery signature, `sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>`, checked
 * with @octokit/webhooks (a constant-time comparison). Slipway's custom git trigger signs the same way
 * under its own header name, so anything that can sign for GitHub can sign for Slipway.
 */

const signatureShape = /^sha256=[0-9a-f]{64}$/i;

/** A header as Node hands it over: absent, once, or repeated. */
export type HeaderValue = string | readonly string[] | undefined;

export async function verifySha256Signature(
  secret: string,
  rawBody: Buffer | string,
  header: HeaderValue,
  headerName: string,
): Promise<void> {
  if (secret === '')
    throw new ConfigError('the trigger has no webhook secret; set one before accepting pushes');
  if (header === undefined || header === '' || (Array.isArray(header) && header.length === 0)) {
    throw new WebhookAuthError(
      'missing',
      headerName,
      `the ${headerName} header is missing: the delivery is unsigned; set the trigger's secret on the sender`,
    );
  }
  if (typeof header !== 'string') {
    throw new WebhookAuthError('malformed', headerName, `the ${headerName} header is given more than once`);
  }
  const signature = header.trim();
  if (!signatureShape.test(signature)) {
    throw new WebhookAuthError(
      'malformed',
      headerName,
      `the ${headerName} header is not "sha256=" followed by 64 hex digits`,
    );
  }
  const body = bodyText(rawBody);
  // The verifier refuses an empty payload outright; an empty body has nothing to build either way.
  if (body === '') throw new WebhookPayloadError('the request body is empty; expected a JSON payload');
  const matches = await new Webhooks({ secret }).verify(body, signature.toLowerCase());
  if (!matches) {
    throw new WebhookAuthError(
      'mismatch',
      headerName,
      `the ${headerName} signature does not match: the sender's secret differs from the trigger's, or the body was changed`,
    );
  }
}

/** `sha256=<hex>` for `body`, as GitHub computes it. */
export async function signSha256(secret: string, body: string): Promise<string> {
  if (secret === '') throw new ConfigError('cannot sign with an empty secret');
  return new Webhooks({ secret }).sign(body);
}
