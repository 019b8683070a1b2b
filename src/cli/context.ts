import type { Command } from 'commander';
import { connect, type ApiClient } from './client.ts';
import { outputOf, type Output } from './output.ts';

/** What a command that talks to the gateway works with: the API client and where to print. */
export interface ApiContext {
  api: ApiClient;
  out: Output;
}

export async function apiContext(command: Command): Promise<ApiContext> {
  return { out: outputOf(command), api: await connect() };
}
