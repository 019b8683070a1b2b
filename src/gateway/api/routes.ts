import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { invalid } from '../../errors.ts';
import { OciError } from '../../registry/errors.ts';
import type { RequestContext } from '../../identity/service.ts';
import type { ApiOptions } from './plugin.ts';
import { errorBody } from './resources.ts';

/** What every route plugin of the API is given. */
export interface RouteOptions extends ApiOptions {
  /** Where a request came from, for the audit log. */
  contextOf: (request: { ip: string }) => RequestContext;
}

export type ApiRoutes = FastifyPluginAsyncZod<RouteOptions>;

/** A route's answers: its success schema(s) and the error body for everything else. */
export function answers<T extends Record<number, z.ZodType>>(success: T) {
  return { ...success, '4xx': errorBody };
}

export const noContent = z.null().describe('no content');

/** Runs a registry parser (names, tags, digests) on API input: what it refuses is the API's 400. */
export function parsedInput<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof OciError) throw invalid(error.message);
    throw error;
  }
}
