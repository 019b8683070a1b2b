import type { Readable } from 'node:stream';
import {
  holdAfter,
  startCountingProxy,
  type AnswerHead,
  type CountingProxy,
  type ProxiedRequest,
} from './counting-proxy.ts';
import { DistributionOciClient, startDistribution } from './distribution.ts';

/**
 * A Distribution registry on loopback behind a counting proxy (which Slipway is pointed at) whose
 * answers a test can reshape for a while: it sets `shapeHead` or `shapeBody`, and clears it again.
 */
export interface ProxiedUpstream {
  /** The registry itself, http://127.0.0.1:<port>: what goes there directly, the proxy does not count. */
  url: string;
  /** The proxy in front of the registry. */
  counter: CountingProxy;
  /** Pushes to the registry directly. */
  pusher: DistributionOciClient;
  shapeHead: ((request: ProxiedRequest) => AnswerHead | undefined) | undefined;
  shapeBody: ((request: ProxiedRequest) => ((body: Readable) => Readable) | undefined) | undefined;
  /**
   * Holds the body of each answer that `match` picks after its first `bytes` bytes; the function it
   * returns lets the held bodies go on and ends the holding (it replaces any `shapeBody`).
   */
  hold(match: (request: ProxiedRequest) => boolean, bytes: number): () => void;
  stop(): Promise<void>;
}

export async function startProxiedUpstream(): Promise<ProxiedUpstream> {
  const registry = await startDistribution();
  let counter: CountingProxy;
  try {
    // The proxy asks for the shapes only once a request comes, long after `upstream` is set.
    counter = await startCountingProxy(registry.url, {
      shapeHead: (request) => upstream.shapeHead?.(request),
      shapeBody: (request) => upstream.shapeBody?.(request),
    });
  } catch (error) {
    await registry.stop();
    throw error;
  }
  const upstream: ProxiedUpstream = {
    url: registry.url,
    counter,
    pusher: new DistributionOciClient(registry.url),
    shapeHead: undefined,
    shapeBody: undefined,
    hold(match, bytes) {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      upstream.shapeBody = (request) => (match(request) ? holdAfter(bytes, held) : undefined);
      return () => {
        release();
        upstream.shapeBody = undefined;
      };
    },
    async stop() {
      await counter.stop();
      await registry.stop();
    },
  };
  return upstream;
}
