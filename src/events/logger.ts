/** The few pino-style log calls the delivery engine makes; the gateway passes its own logger. */
export interface EventsLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
