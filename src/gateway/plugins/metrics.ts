import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Histogram, type Registry } from 'prom-client';

export interface MetricsOptions {
  registry: Registry;
}

/** Request durations for every route, and the Prometheus scrape endpoint at /metrics. */
const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (app, { registry }) => {
  const duration = new Histogram({
    name: 'slipway_http_request_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unknown', status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', registry.contentType);
    return registry.metrics();
  });
};

export default fp(metricsPlugin, { name: 'slipway-metrics' });
