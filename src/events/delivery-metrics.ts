import { Counter, Histogram, type Registry } from 'prom-client';

export interface DeliveryMetrics {
  /** Finished deliveries by method (webhook, slack) and outcome (delivered, dead, skipped). */
  deliveries: Counter<'method' | 'outcome'>;
  /** Each attempt's time, by method and result (success, failure). */
  attemptSeconds: Histogram<'method' | 'result'>;
  /** Deliveries that failed every attempt and wait in the log for a replay. */
  deadLetters: Counter<'method'>;
}

export function createDeliveryMetrics(registry: Registry): DeliveryMetrics {
  const registers = [registry];
  return {
    deliveries: new Counter({
      name: 'slipway_event_deliveries_total',
      help: 'Event deliveries finished, by method and outcome (delivered, dead, skipped)',
      labelNames: ['method', 'outcome'],
      registers,
    }),
    attemptSeconds: new Histogram({
      name: 'slipway_event_delivery_attempt_seconds',
      help: 'Time from sending an event delivery attempt to its answer, by method and result',
      labelNames: ['method', 'result'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    deadLetters: new Counter({
      name: 'slipway_event_dead_letters_total',
      help: 'Event deliveries that failed every attempt (dead letters, kept for replay)',
      labelNames: ['method'],
      registers,
    }),
  };
}
