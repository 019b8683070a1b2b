import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isOciError, OciError } from '../errors.ts';

/** Serialises every failure under /v2 as the spec's `{ errors: [...] }`; never a 500 for bad input. */
export function registryErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const oci = toOciError(error);
  if (oci.status >= 500) request.log.error({ err: error }, 'registry request failed');
  reply
    .code(oci.status)
    .headers(oci.headers)
    .header('Docker-Distribution-API-Version', 'registry/2.0')
    .header('Content-Type', 'application/json');
  return reply.send(JSON.stringify(oci.toJSON()));
}

export function registryNotFound(request: FastifyRequest, reply: FastifyReply) {
  return registryErrorHandler(
    new OciError('UNSUPPORTED', `no registry endpoint at ${request.url.slice(0, 200)}`, { status: 404 }),
    request,
    reply,
  );
}

function toOciError(error: FastifyError | Error): OciError {
  if (isOciError(error)) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new OciError('SIZE_INVALID', 'request body too large', { status: 413 });
  }
  if (fastifyError.statusCode && fastifyError.statusCode < 500) {
    return new OciError('UNSUPPORTED', fastifyError.message, { status: fastifyError.statusCode });
  }
  if ((error as { code?: string }).code === 'SLW_ERR_STORAGE') {
    return new OciError('UNAVAILABLE', 'blob storage is unavailable; try again shortly', { status: 503 });
  }
  return new OciError('UNAVAILABLE', 'internal error; the request was not completed', { status: 500 });
}
