import type { EventKind, EventPayload } from './catalog.ts';

/**
 * A Slack incoming-webhook message for people: a headline with an emoji for what happened, then the
 * facts that matter (tags, short digest, commit, upstream, counts) in an attachment whose colour bar
 * says how it went, and a button to the build log. User-supplied text is escaped and clipped so the
 * message always stays within Block Kit's limits; Slack refuses a whole message over one bad block.
 */

// ---- Block Kit types (only what this module emits) ----

export interface PlainText {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}

export interface Mrkdwn {
  type: 'mrkdwn';
  text: string;
}

export interface ButtonElement {
  type: 'button';
  action_id: string;
  text: PlainText;
  url: string;
  style?: 'primary' | 'danger';
}

export interface HeaderBlock {
  type: 'header';
  block_id: string;
  text: PlainText;
}

export interface SectionBlock {
  type: 'section';
  block_id: string;
  text?: Mrkdwn;
  fields?: Mrkdwn[];
}

export interface ContextBlock {
  type: 'context';
  block_id: string;
  elements: Mrkdwn[];
}

export interface ActionsBlock {
  type: 'actions';
  block_id: string;
  elements: ButtonElement[];
}

export type SlackBlock = HeaderBlock | SectionBlock | ContextBlock | ActionsBlock;

export interface SlackAttachment {
  /** A hex colour for the bar beside the attachment. */
  color: string;
  /** Shown where blocks cannot be (old clients, some notifications). */
  fallback: string;
  blocks: SlackBlock[];
}

export interface SlackMessage {
  /** The notification text, and what clients without Block Kit show. */
  text: string;
  blocks: SlackBlock[];
  attachments?: SlackAttachment[];
}

export interface SlackMessageOptions {
  /**
   * The gateway's public URL, to make the API paths of payloads (`log_url`) into links. Without it the
   * registry host of `docker_url` is taken, over https.
   */
  publicUrl?: string;
}

/** Block Kit limits, in UTF-16 units (at least as strict as Slack's character counts). */
export const blockKitLimits = {
  headerText: 150,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 3000,
  blocks: 50,
  buttonText: 75,
  url: 3000,
  blockId: 255,
} as const;

// ---- Outcome: colour and emoji ----

export type Outcome = 'success' | 'failure' | 'info';

export const outcomeColors: Record<Outcome, string> = {
  success: '#2eb67d',
  failure: '#e01e5a',
  info: '#9ea3a8',
};

const kindStyle: Record<EventKind, { outcome: Outcome; emoji: string }> = {
  repo_push: { outcome: 'success', emoji: '📦' },
  repo_tag_deleted: { outcome: 'info', emoji: '🗑️' },
  build_queued: { outcome: 'info', emoji: '⏳' },
  build_start: { outcome: 'info', emoji: '🔨' },
  build_success: { outcome: 'success', emoji: '✅' },
  build_failure: { outcome: 'failure', emoji: '❌' },
  build_cancelled: { outcome: 'info', emoji: '🚫' },
  repo_mirror_sync_started: { outcome: 'info', emoji: '🔄' },
  repo_mirror_sync_success: { outcome: 'success', emoji: '✅' },
  repo_mirror_sync_failed: { outcome: 'failure', emoji: '❌' },
  subscription_disabled: { outcome: 'failure', emoji: '⚠️' },
};

export function outcomeOf(kind: EventKind): Outcome {
  return kindStyle[kind].outcome;
}

// ---- Text helpers ----

const ellipsis = '…';

/** `value` cut to at most `max` UTF-16 units, ending in an ellipsis when cut, never splitting a pair. */
export function clip(value: string, max: number): string {
  if (value.length <= max) return value;
  let cut = value.slice(0, max - ellipsis.length);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + ellipsis;
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/** `value` escaped for mrkdwn (`&`, `<`, `>`), clipped so that the escaped text is at most `max` long. */
export function esc(value: string, max = 200): string {
  const escape = (ch: string) => entities[ch] ?? ch;
  const full = value.replace(/[&<>]/g, escape);
  if (full.length <= max) return full;
  let out = '';
  for (const ch of value) {
    const piece = escape(ch);
    if (out.length + piece.length > max - ellipsis.length) break;
    out += piece;
  }
  return out + ellipsis;
}

/** Inline code; backticks inside would end it early, so they become a look-alike. */
function code(value: string, max = 120): string {
  return '`' + esc(value.replaceAll('`', 'ˋ'), max) + '`';
}

/** `value` (resolved against `base`) as an http(s) URL within Block Kit's length, with no `|` or `<>`; else null. */
export function safeUrl(value: string | undefined, base?: string): string | null {
  if (!value) return null;
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  const href = url.href.replaceAll('|', '%7C');
  return href.length <= blockKitLimits.url ? href : null;
}

/** A mrkdwn link to `url` (from `safeUrl`) labelled with already escaped text; the label alone without one. */
function link(url: string | null, label: string): string {
  return url ? `<${url.replaceAll('&', '&amp;')}|${label}>` : label;
}

/** `sha256:` and the first 12 hex digits: enough to tell images apart. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 12) : digest.slice(0, colon + 13);
}

/** Up to `max` values as inline code, then how many more. */
function codeList(values: readonly string[], max = 10): string {
  if (values.length === 0) return '_none_';
  const shown = values.slice(0, max).map((v) => code(v, 80));
  const more = values.length - shown.length;
  return shown.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

function field(label: string, value: string): Mrkdwn {
  return { type: 'mrkdwn', text: `*${label}*\n${value}` };
}

function mrkdwn(text: string): Mrkdwn {
  return { type: 'mrkdwn', text };
}

function whoOf(actor: string | null): string {
  return actor === null ? '_anonymous_' : esc(actor, 100);
}

const mediaTypeNames: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'OCI image manifest',
  'application/vnd.oci.image.index.v1+json': 'OCI image index',
  'application/vnd.docker.distribution.manifest.v2+json': 'Docker image manifest',
  'application/vnd.docker.distribution.manifest.list.v2+json': 'Docker manifest list',
};

// ---- The message ----

/** What one event family renders: a headline (plain text) and the blocks inside the colour bar. */
interface Rendered {
  headline: string;
  details: SlackBlock[];
}

type Of<K extends EventKind> = EventPayload<K>;
type BuildKind = 'build_queued' | 'build_start' | 'build_success' | 'build_failure' | 'build_cancelled';
type MirrorKind = 'repo_mirror_sync_started' | 'repo_mirror_sync_success' | 'repo_mirror_sync_failed';

export function slackMessage(payload: EventPayload, options: SlackMessageOptions = {}): SlackMessage {
  const { outcome, emoji } = kindStyle[payload.kind];
  const { headline, details } = render(payload, options);
  const marked = payload.test ? `[Test] ${headline}` : headline;
  const text = esc(`${emoji} ${marked}`, 300);
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      block_id: 'headline',
      text: { type: 'plain_text', text: clip(`${emoji} ${marked}`, blockKitLimits.headerText), emoji: true },
    },
  ];
  if (payload.test) blocks.push(testNotice(payload));
  return {
    text,
    blocks,
    attachments: [{ color: outcomeColors[outcome], fallback: text, blocks: [...details, footer(payload)] }],
  };
}

function render(payload: EventPayload, options: SlackMessageOptions): Rendered {
  switch (payload.kind) {
    case 'repo_push':
      return renderPush(payload);
    case 'repo_tag_deleted':
      return renderTagDeleted(payload);
    case 'build_queued':
    case 'build_start':
    case 'build_success':
    case 'build_failure':
    case 'build_cancelled':
      return renderBuild(payload, options);
    case 'repo_mirror_sync_started':
    case 'repo_mirror_sync_success':
    case 'repo_mirror_sync_failed':
      return renderMirror(payload);
    case 'subscription_disabled':
      return renderSubscriptionDisabled(payload);
  }
}

function where(payload: EventPayload): string {
  return payload.repository ?? payload.namespace;
}

function testNotice(payload: EventPayload): ContextBlock {
  return {
    type: 'context',
    block_id: 'test-notice',
    elements: [
      mrkdwn(
        `🧪 *This is a test event* sent to check this subscription: nothing happened in ` +
          `${code(where(payload))}, and the details below are sample data.`,
      ),
    ],
  };
}

function footer(payload: EventPayload): ContextBlock {
  const seconds = Math.floor(Date.parse(payload.time) / 1000);
  const when = Number.isFinite(seconds)
    ? `<!date^${seconds}^{date_short_pretty} at {time}|${esc(payload.time, 40)}>`
    : esc(payload.time, 40);
  const elements = [mrkdwn(payload.docker_url ? code(payload.docker_url, 300) : esc(payload.namespace))];
  elements.push(mrkdwn(when), mrkdwn(`event ${code(payload.id, 60)}`));
  return { type: 'context', block_id: 'footer', elements };
}

function renderPush(p: Of<'repo_push'>): Rendered {
  const fields = [
    field(p.updated_tags.length === 1 ? 'Tag' : 'Tags', codeList(p.updated_tags)),
    field('Digest', code(shortDigest(p.digest), 40)),
    field('Type', esc(mediaTypeNames[p.media_type] ?? p.media_type, 150)),
    field('Pushed by', whoOf(p.pusher)),
  ];
  const details: SlackBlock[] = [{ type: 'section', block_id: 'facts', fields }];
  const pull = pullCommand(p);
  if (pull) details.push({ type: 'section', block_id: 'pull', text: mrkdwn(`Pull it: ${pull}`) });
  return { headline: `New image pushed to ${p.repository ?? p.namespace}`, details };
}

const plainTag = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

function pullCommand(p: Of<'repo_push'>): string | null {
  if (!p.docker_url) return null;
  const tag = p.updated_tags.find((t) => plainTag.test(t));
  return code(`docker pull ${p.docker_url}${tag ? `:${tag}` : `@${p.digest}`}`, 600);
}

function renderTagDeleted(p: Of<'repo_tag_deleted'>): Rendered {
  const fields = [
    field(p.deleted_tags.length === 1 ? 'Deleted tag' : 'Deleted tags', codeList(p.deleted_tags)),
    field('Digest', code(shortDigest(p.digest), 40)),
    field('Deleted by', whoOf(p.deleted_by)),
  ];
  const count = p.deleted_tags.length === 1 ? 'Tag' : `${p.deleted_tags.length} tags`;
  return {
    headline: `${count} deleted from ${where(p)}`,
    details: [{ type: 'section', block_id: 'facts', fields }],
  };
}

const buildVerbs: Record<BuildKind, string> = {
  build_queued: 'queued',
  build_start: 'started',
  build_success: 'succeeded',
  build_failure: 'failed',
  build_cancelled: 'cancelled',
};

function renderBuild(p: Of<BuildKind>, options: SlackMessageOptions): Rendered {
  const details: SlackBlock[] = [{ type: 'section', block_id: 'facts', fields: buildFacts(p) }];
  const message = p.trigger_metadata?.commit_info?.message;
  if (message) {
    const firstLine = message.split('\n', 1)[0] ?? '';
    details.push({ type: 'section', block_id: 'commit-message', text: mrkdwn(`> ${esc(firstLine, 300)}`) });
  }
  if (p.kind === 'build_failure') {
    const error = esc(p.error_message, 2000);
    details.push({ type: 'section', block_id: 'error', text: mrkdwn(`*Error*\n\`\`\`${error}\`\`\``) });
  }
  const logUrl = absoluteUrl(p.log_url, p, options);
  details.push(
    logUrl
      ? {
          type: 'actions',
          block_id: 'links',
          elements: [
            {
              type: 'button',
              action_id: 'build-log',
              text: { type: 'plain_text', text: 'View build log' },
              url: logUrl,
              ...(p.kind === 'build_failure' ? { style: 'danger' as const } : {}),
            },
          ],
        }
      : { type: 'context', block_id: 'links', elements: [mrkdwn(`Build log: ${code(p.log_url, 500)}`)] },
  );
  const name = clip(p.build_name, 40);
  return { headline: `Build ${buildVerbs[p.kind]} for ${where(p)} [${name}]`, details };
}

function buildFacts(p: Of<BuildKind>): Mrkdwn[] {
  const meta = p.trigger_metadata;
  const facts: Mrkdwn[] = [];
  if (meta) {
    const commitUrl = safeUrl(meta.commit_info?.url);
    const sha = meta.commit.slice(0, 7);
    facts.push(field('Commit', commitUrl ? link(commitUrl, esc(sha, 20)) : code(sha, 20)));
    facts.push(field(refLabel(meta.ref), code(refName(meta.ref), 120)));
    const author = meta.commit_info?.author;
    const who = author?.username ?? author?.name;
    if (who) facts.push(field('Author', link(safeUrl(author?.url), esc(who, 100))));
  }
  facts.push(field('Tags', codeList(p.docker_tags)));
  if (p.kind === 'build_success') facts.push(field('Digest', code(shortDigest(p.digest), 40)));
  facts.push(field('Trigger', triggerNames[p.trigger_kind]));
  return facts;
}

const triggerNames = { github: 'GitHub push', gitlab: 'GitLab push', git: 'Git push', manual: 'Manual' };

function refLabel(ref: string): string {
  return ref.startsWith('refs/tags/') ? 'Git tag' : ref.startsWith('refs/heads/') ? 'Branch' : 'Ref';
}

function refName(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

function absoluteUrl(path: string, p: EventPayload, options: SlackMessageOptions): string | null {
  const host = p.docker_url?.split('/', 1)[0];
  const base = options.publicUrl ?? (host ? `https://${host}` : undefined);
  return safeUrl(path, base);
}

const mirrorHeadlines: Record<MirrorKind, string> = {
  repo_mirror_sync_started: 'Mirror sync started',
  repo_mirror_sync_success: 'Mirror sync finished',
  repo_mirror_sync_failed: 'Mirror sync failed',
};

function renderMirror(p: Of<MirrorKind>): Rendered {
  const fields = [field('Upstream', code(p.upstream, 300)), field('Tag filter', codeList(p.tag_filter, 8))];
  if (p.kind !== 'repo_mirror_sync_started') {
    fields.push(field('Synced', String(p.synced)), field('Up to date', String(p.skipped)));
    fields.push(field('Failed', String(p.failed)));
  }
  const details: SlackBlock[] = [
    { type: 'section', block_id: 'summary', text: mrkdwn(esc(p.message, 500)) },
    { type: 'section', block_id: 'facts', fields },
  ];
  if (p.kind !== 'repo_mirror_sync_started' && p.failures.length > 0) details.push(failureList(p.failures));
  return { headline: `${mirrorHeadlines[p.kind]} for ${where(p)}`, details };
}

function failureList(failures: readonly { tag: string; error: string }[], max = 5): SectionBlock {
  const lines = failures.slice(0, max).map((f) => `• ${code(f.tag, 80)}: ${esc(f.error, 300)}`);
  const more = failures.length - max;
  const title = more > 0 ? `*Failures* (first ${max} of ${failures.length})` : '*Failures*';
  return { type: 'section', block_id: 'failures', text: mrkdwn([title, ...lines].join('\n')) };
}

function renderSubscriptionDisabled(p: Of<'subscription_disabled'>): Rendered {
  const text = `*${esc(p.title, 150)}* no longer receives events.\n${esc(p.reason, 1500)}`;
  return {
    headline: `Event subscription disabled for ${where(p)}`,
    details: [
      { type: 'section', block_id: 'reason', text: mrkdwn(text) },
      {
        type: 'context',
        block_id: 'subscription',
        elements: [mrkdwn(`subscription ${code(p.subscription_id, 60)}`)],
      },
    ],
  };
}
