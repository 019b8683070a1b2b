import { z } from 'zod';

/**
 * A validator for the Slack Block Kit a message may use, with Slack's documented limits: Slack refuses
 * a whole message (`invalid_blocks`) over one bad block, so a message must pass this before it is sent.
 * Mrkdwn text must also be escaped: every `<` opens a link or date this module allows, every `&` is an
 * entity. Mentions such as `<!channel>` never pass, so user input cannot ping a channel.
 */

/** The constructs mrkdwn text may hold in angle brackets: http(s) links and dates (and `> ` quotes). */
const allowedAngles = /<https?:\/\/[^\s<>|]+(?:\|[^<>]*)?>|<!date\^\d+\^[^|<>]*(?:\^[^|<>]*)?\|[^<>]*>/g;

/** Why a mrkdwn text is not safely escaped, or null when it is. */
export function mrkdwnProblem(text: string): string | null {
  for (const match of text.matchAll(allowedAngles)) {
    const href = /^<(https?:\/\/[^|>]+)/.exec(match[0])?.[1];
    if (href && !URL.canParse(href.replaceAll('&amp;', '&'))) return `bad link URL ${href}`;
  }
  // A `>` opening a line is a block quote.
  const rest = text.replace(allowedAngles, '').replace(/^> /gm, '');
  const angle = /[<>]/.exec(rest);
  if (angle)
    return `unescaped "${angle[0]}" near ${JSON.stringify(rest.slice(angle.index, angle.index + 30))}`;
  const amp = /&(?!amp;|lt;|gt;)/.exec(rest);
  if (amp) return `unescaped "&" near ${JSON.stringify(rest.slice(amp.index, amp.index + 30))}`;
  return null;
}

const plainText = (max: number) =>
  z.strictObject({
    type: z.literal('plain_text'),
    text: z.string().min(1).max(max),
    emoji: z.boolean().optional(),
  });

const mrkdwn = (max: number) =>
  z.strictObject({
    type: z.literal('mrkdwn'),
    text: z
      .string()
      .min(1)
      .max(max)
      .superRefine((text, ctx) => {
        const problem = mrkdwnProblem(text);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    verbatim: z.boolean().optional(),
  });

const httpUrl = z
  .string()
  .max(3000)
  .refine((url) => /^https?:\/\//.test(url) && URL.canParse(url), 'expected an absolute http(s) URL');

const blockId = z.string().min(1).max(255).optional();

const button = z.strictObject({
  type: z.literal('button'),
  action_id: z.string().min(1).max(255),
  text: plainText(75),
  url: httpUrl.optional(),
  value: z.string().max(2000).optional(),
  style: z.enum(['primary', 'danger']).optional(),
});

const header = z.strictObject({ type: z.literal('header'), block_id: blockId, text: plainText(150) });

const section = z
  .strictObject({
    type: z.literal('section'),
    block_id: blockId,
    text: z.union([mrkdwn(3000), plainText(3000)]).optional(),
    fields: z
      .array(z.union([mrkdwn(2000), plainText(2000)]))
      .min(1)
      .max(10)
      .optional(),
    accessory: button.optional(),
  })
  .refine((s) => s.text !== undefined || s.fields !== undefined, 'a section needs text or fields');

const image = z.strictObject({
  type: z.literal('image'),
  image_url: httpUrl,
  alt_text: z.string().min(1).max(2000),
});

const context = z.strictObject({
  type: z.literal('context'),
  block_id: blockId,
  elements: z
    .array(z.union([mrkdwn(3000), plainText(3000), image]))
    .min(1)
    .max(10),
});

const actions = z
  .strictObject({ type: z.literal('actions'), block_id: blockId, elements: z.array(button).min(1).max(25) })
  .refine(
    (a) => new Set(a.elements.map((e) => e.action_id)).size === a.elements.length,
    'duplicate action_id',
  );

const divider = z.strictObject({ type: z.literal('divider'), block_id: blockId });

export const blockSchema = z.discriminatedUnion('type', [header, section, context, actions, divider]);

const blockList = z.array(blockSchema).max(50);

const attachment = z.strictObject({
  color: z.string().regex(/^(#[0-9a-fA-F]{6}|good|warning|danger)$/),
  fallback: z.string().max(3000).optional(),
  blocks: blockList,
});

/** An incoming-webhook message: notification `text`, blocks, and attachments of blocks with a colour. */
export const slackMessageSchema = z
  .strictObject({
    text: z
      .string()
      .min(1)
      .max(4000)
      .superRefine((text, ctx) => {
        const problem = mrkdwnProblem(text);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    blocks: blockList.min(1),
    attachments: z.array(attachment).max(20).optional(),
  })
  .superRefine((message, ctx) => {
    const all = allBlocks(message);
    if (all.length > 50) ctx.addIssue({ code: 'custom', message: `${all.length} blocks, at most 50` });
    const ids = all.flatMap((b) => (b.block_id === undefined ? [] : [b.block_id]));
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate block_id ${dup}` });
  });

export type ValidBlock = z.infer<typeof blockSchema>;
export type ValidMessage = z.infer<typeof slackMessageSchema>;

/** Every problem with `message` as `path: message` lines; empty when it is valid Block Kit. */
export function blockKitProblems(message: unknown): string[] {
  const result = slackMessageSchema.safeParse(message);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
}

interface AnyMessage {
  blocks: { block_id?: string | undefined }[];
  attachments?: { blocks: { block_id?: string | undefined }[] }[] | undefined;
}

function allBlocks<M extends AnyMessage>(message: M): M['blocks'] {
  return [...message.blocks, ...(message.attachments ?? []).flatMap((a) => a.blocks)];
}

/** Every text object of a valid message, in order, with the top-level `text` first. */
export function textsOf(message: ValidMessage): { type: 'plain_text' | 'mrkdwn'; text: string }[] {
  const texts: { type: 'plain_text' | 'mrkdwn'; text: string }[] = [{ type: 'mrkdwn', text: message.text }];
  for (const block of allBlocks(message)) {
    if (block.type === 'header') texts.push(block.text);
    if (block.type === 'section') texts.push(...(block.text ? [block.text] : []), ...(block.fields ?? []));
    if (block.type === 'context') {
      for (const e of block.elements) if (e.type !== 'image') texts.push(e);
    }
    if (block.type === 'actions') texts.push(...block.elements.map((e) => e.text));
  }
  return texts;
}

/** The URLs of every button of a valid message. */
export function buttonUrlsOf(message: ValidMessage): string[] {
  return allBlocks(message).flatMap((b) =>
    b.type === 'actions' ? b.elements.flatMap((e) => (e.url ? [e.url] : [])) : [],
  );
}
