import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

/**
 * One log line per request, written when the response is done: what operators grep when a client
 * reports a failed pull. Off by default (`accessLog`): it costs more than serving a cached manifest.
 */
const accessLogPlugin: FastifyPluginAsync = async (app) => {
  app.addHook('onResponse', (request, reply, done) => {
    const length = reply.getHeader('content-length');
    app.log.info(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(length !== undefined ? { bytes: Number(length) } : {}),
        remote: request.ip,
        ...(request.headers['user-agent'] ? { agent: request.headers['user-agent'] } : {}),
      },
      'request',
    );
    done();
  });
};

export default fp(accessLogPlugin, { name: 'slipway-access-log' });
