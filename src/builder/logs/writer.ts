import type { Redis } from 'ioredis';
import { defaultMaxLineLength } from '../output/line-splitter.ts';
import type { OutputStream } from '../output/output-stream.ts';
import { SecretMasker } from '../output/secret-masker.ts';
import { buildLogKey, toStreamFields, type NewBuildLogEntry } from './entry.ts';

export interface BuildLogWriterOptions {
  /** A client shared by every writer of the process; the writer only sends non-blocking commands. */
  redis: Redis;
  keyPrefix: string;
  buildId: string;
  /** Masked wherever they appear in a line or phase name. */
  secrets?: Iterable<string>;
  /** Characters kept of one line; the rest is replaced by a marker. Default 16 384. */
  maxLineLength?: number;
  /** Bytes of line text kept for the whole build; later lines are dropped. Default 32 MiB. */
  maxLogBytes?: number;
  /** How long entries wait for others to share their round trip. Default 2 ms. */
  coalesceMs?: number;
  /** Entries sent in one round trip at most. Default 512. */
  maxBatchEntries?: number;
  /**
   * The stream expires this long after its last write, so a builder that dies before the log is
   * archived leaves nothing behind for ever. Default 24 h.
   */
  abandonedAfterSeconds?: number;
  now?: () => number;
}

/**
 * Appends a batch of entries, then renews the stream's expiry, unless the stream has ended: an `end`
 * is always its last entry, since every batch goes through here. Atomic, so that of a builder and a
 * gateway ending the same build, whichever comes second writes nothing. ARGV: the expiry in seconds,
 * then per entry its field count and fields. Returns how many entries were added.
 */
const appendUnlessEnded = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last and last[2][1] == 't' and last[2][2] == 'end' then return 0 end
local i, added = 2, 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + count))
  i, added = i + count + 1, added + 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return added
`;

/**
 * Appends one build's log to its Redis stream. `line` and `phase` return at once: entries written in
 * quick succession are sent together in one round trip, either after `coalesceMs` or as soon as the
 * previous round trip finished. `end` writes the final entry and waits until everything is stored.
 * Once the stream has an `end` (written by this writer or another, e.g. the gateway's for a build it
 * ended itself), later entries are dropped.
 */
export class BuildLogWriter {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #masker: SecretMasker;
  readonly #maxLineLength: number;
  readonly #maxLogBytes: number;
  readonly #coalesceMs: number;
  readonly #maxBatchEntries: number;
  readonly #abandonedAfterSeconds: number;
  readonly #now: () => number;

  #queue: NewBuildLogEntry[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #failure: unknown;
  #logBytes = 0;
  #truncated = false;
  #ended = false;

  constructor(options: BuildLogWriterOptions) {
    this.#redis = options.redis;
    this.#key = buildLogKey(options.keyPrefix, options.buildId);
    this.#masker = new SecretMasker(options.secrets ?? []);
    this.#maxLineLength = options.maxLineLength ?? defaultMaxLineLength;
    this.#maxLogBytes = options.maxLogBytes ?? 32 * 1024 * 1024;
    this.#coalesceMs = options.coalesceMs ?? 2;
    this.#maxBatchEntries = options.maxBatchEntries ?? 512;
    this.#abandonedAfterSeconds = options.abandonedAfterSeconds ?? 24 * 60 * 60;
    this.#now = options.now ?? Date.now;
  }

  /** One line of output, without its line break. */
  line(stream: OutputStream, text: string): void {
    this.#assertOpen();
    if (this.#truncated) return;
    const kept = this.#capLength(this.#masker.mask(text));
    const bytes = Buffer.byteLength(kept);
    if (this.#logBytes + bytes > this.#maxLogBytes) {
      this.#truncated = true;
      this.#enqueue({
        type: 'truncated',
        text: `log truncated: it reached ${this.#maxLogBytes} bytes; later lines are not kept`,
        at: this.#now(),
      });
      return;
    }
    this.#logBytes += bytes;
    this.#enqueue({ type: 'line', stream, text: kept, at: this.#now() });
  }

  phase(phase: string): void {
    this.#assertOpen();
    this.#enqueue({ type: 'phase', phase: this.#masker.mask(phase), at: this.#now() });
  }

  /** Writes the final entry and resolves once every entry is stored. Nothing can be written after. */
  async end(finalPhase: string): Promise<void> {
    this.#assertOpen();
    this.#enqueue({ type: 'end', phase: this.#masker.mask(finalPhase), at: this.#now() });
    this.#ended = true;
    await this.flush();
  }

  /** Resolves once every entry written so far is stored; rejects if any round trip failed. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#sending || this.#queue.length) {
      if (!this.#sending) this.#sending = this.#drain();
      await this.#sending;
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  #enqueue(entry: NewBuildLogEntry): void {
    this.#queue.push(entry);
    if (this.#sending) return; // #drain picks it up when the round trip in flight returns.
    if (this.#queue.length >= this.#maxBatchEntries) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#sending = this.#drain();
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#sending ??= this.#drain();
      }, this.#coalesceMs);
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, this.#maxBatchEntries);
        const args = [String(this.#abandonedAfterSeconds)];
        for (const entry of batch) {
          const fields = toStreamFields(entry);
          args.push(String(fields.length), ...fields);
        }
        await this.#redis.eval(appendUnlessEnded, 1, this.#key, ...args);
      }
    } catch (error) {
      // Kept for the next flush or end; the builder decides whether a lost log fails the build.
      this.#failure ??= error;
      this.#queue = [];
    } finally {
      this.#sending = undefined;
    }
  }

  #capLength(text: string): string {
    if (text.length <= this.#maxLineLength) return text;
    let cut = this.#maxLineLength;
    // Never split a surrogate pair.
    if (/[\uD800-\uDBFF]/.test(text.charAt(cut - 1))) cut--;
    return `${text.slice(0, cut)}… [line truncated: ${text.length - cut} more characters]`;
  }

  #assertOpen(): void {
    if (this.#ended) throw new Error(`the build log ${this.#key} has ended; nothing more can be written`);
  }
}

/** Why the gateway ended a build itself, and how, for the build's log. */
export interface GatewayEnd {
  phase: string;
  reason: string;
}

/**
 * Ends the log of a build that the gateway ended itself, as its builder would have: a line saying why,
 * the final phase and the `end`, so that followers stop at once. Nothing is written when the log has
 * ended already (its builder ended it before the gateway did).
 */
export async function endLogAsBuilder(
  options: Pick<BuildLogWriterOptions, 'redis' | 'keyPrefix' | 'buildId'>,
  end: GatewayEnd,
): Promise<void> {
  const writer = new BuildLogWriter(options);
  writer.line('stderr', end.reason);
  writer.phase(end.phase);
  await writer.end(end.phase);
}
