import { Option, type Command } from 'commander';
import { collect, path } from '../client.ts';
import { apiContext } from '../context.ts';
import { usageError } from '../errors.ts';
import { time, type Column } from '../output.ts';
import { limitOption } from '../parse.ts';
import type { DeliveryAttemptResource, DeliveryResource, SubscriptionResource } from '../resources.ts';
import { repositoryPath } from './repo.ts';

/** What a subscription is about: one repository, or every repository of a namespace. */
const scopeOf = (subscription: SubscriptionResource) =>
  subscription.repository ?? `${subscription.namespace} (all repositories)`;

const subscriptionColumns: ReadonlyArray<Column<SubscriptionResource>> = [
  { header: 'id', value: (subscription) => subscription.id },
  { header: 'scope', value: scopeOf },
  { header: 'method', value: (subscription) => subscription.method },
  { header: 'events', value: (subscription) => subscription.events.join(',') },
  { header: 'url', value: (subscription) => subscription.url },
  { header: 'enabled', value: (subscription) => subscription.enabled },
];

const subscriptionFields: ReadonlyArray<Column<SubscriptionResource>> = [
  { header: 'id', value: (subscription) => subscription.id },
  { header: 'title', value: (subscription) => subscription.title },
  { header: 'scope', value: scopeOf },
  { header: 'events', value: (subscription) => subscription.events.join(', ') },
  { header: 'filter', value: (subscription) => subscription.filter },
  { header: 'method', value: (subscription) => subscription.method },
  { header: 'url', value: (subscription) => subscription.url },
  { header: 'format', value: (subscription) => subscription.format },
  { header: 'enabled', value: (subscription) => subscription.enabled },
  { header: 'disabled because', value: (subscription) => subscription.disabledReason },
  { header: 'failures in a row', value: (subscription) => subscription.consecutiveFailures },
  { header: 'created by', value: (subscription) => subscription.createdBy },
  { header: 'created', value: (subscription) => time(subscription.createdAt) },
];

const deliveryColumns: ReadonlyArray<Column<DeliveryResource>> = [
  { header: 'delivery', value: (delivery) => delivery.id },
  { header: 'event', value: (delivery) => delivery.eventKind },
  { header: 'status', value: (delivery) => delivery.status },
  { header: 'attempts', value: (delivery) => delivery.attempts },
  { header: 'last code', value: (delivery) => delivery.attemptLog.at(-1)?.statusCode },
  { header: 'time', value: (delivery) => time(delivery.createdAt) },
];

const deliveryFields: ReadonlyArray<Column<DeliveryResource>> = [
  { header: 'delivery', value: (delivery) => delivery.id },
  { header: 'event', value: (delivery) => `${delivery.eventKind} ${delivery.eventId}` },
  { header: 'status', value: (delivery) => delivery.status },
  { header: 'attempts', value: (delivery) => delivery.attempts },
  { header: 'created', value: (delivery) => time(delivery.createdAt) },
  { header: 'finished', value: (delivery) => time(delivery.finishedAt) },
  { header: 'next attempt', value: (delivery) => time(delivery.nextAttemptAt) },
];

const attemptColumns: ReadonlyArray<Column<DeliveryAttemptResource>> = [
  { header: 'when', value: (attempt) => time(attempt.attemptedAt) },
  { header: 'code', value: (attempt) => attempt.statusCode },
  { header: 'ms', value: (attempt) => Math.round(attempt.latencyMs) },
  { header: 'ok', value: (attempt) => attempt.success },
  { header: 'error', value: (attempt) => attempt.error },
  { header: 'response', value: (attempt) => attempt.responseExcerpt?.replace(/\s+/g, ' ').slice(0, 60) },
];

interface ScopeFlags {
  repo?: string;
  org?: string;
}

interface CreateFlags extends ScopeFlags {
  event?: string[];
  webhook?: string;
  slack?: string;
  secret?: string;
  cloudevents?: boolean;
  filter?: string;
  title?: string;
}

const subscriptionPath = (id: string) => path`/notifications/${id}`;

/** The subscriptions of `--repo` or of `--org`: one of them, never both (commander refuses both). */
function collectionOf(flags: ScopeFlags): string {
  if (flags.repo) return `${repositoryPath(flags.repo)}/notifications`;
  if (flags.org) return path`/namespaces/${flags.org}/notifications`;
  throw usageError('say whose events: --repo NAMESPACE/NAME or --org NAMESPACE');
}

function scopeOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--repo <repository>', 'a repository you administer, e.g. acme/app').conflicts('org'),
    )
    .addOption(
      new Option(
        '--org <namespace>',
        'every repository of an organization you administer (or of your own user)',
      ).conflicts('repo'),
    );
}

export function registerNotify(program: Command): void {
  const notify = program
    .command('notify')
    .description('send the events of a repository or organization to webhooks and Slack');

  scopeOptions(
    notify
      .command('create')
      .description('subscribe a webhook or Slack to events; prints a webhook signing secret (once)'),
  )
    .option(
      '--event <kind>',
      'an event kind, e.g. repo_push, build_failure, repo_mirror_sync_failed (repeat for more)',
      (kind: string, kinds: string[] | undefined) => [...(kinds ?? []), kind],
    )
    .addOption(new Option('--webhook <url>', 'POST each event to this URL, signed').conflicts('slack'))
    .addOption(
      new Option('--secret <whsec>', 'the signing secret (whsec_…); generated when left out').conflicts(
        'slack',
      ),
    )
    .addOption(
      new Option(
        '--cloudevents',
        'send webhooks as structured CloudEvents instead of Standard Webhooks',
      ).conflicts('slack'),
    )
    .addOption(new Option('--slack <url>', 'post each event to this Slack incoming-webhook URL'))
    .option(
      '--filter <filter>',
      'a tag glob for repo_push and repo_tag_deleted, or a git ref regex for builds',
    )
    .option('--title <title>', 'a name for people; one is made from the method and events otherwise')
    .action(async (flags: CreateFlags, command: Command) => {
      const collection = collectionOf(flags);
      if (!flags.event) throw usageError('name the events to send: --event KIND (repeat for more)');
      const url = flags.webhook ?? flags.slack;
      if (!url) throw usageError('say where to send them: --webhook URL or --slack URL');
      const { api, out } = await apiContext(command);
      const created = await api.post<SubscriptionResource>(collection, {
        events: flags.event,
        method: flags.webhook ? 'webhook' : 'slack',
        url,
        ...(flags.secret ? { secret: flags.secret } : {}),
        ...(flags.cloudevents ? { format: 'cloudevents' } : {}),
        ...(flags.filter ? { filter: flags.filter } : {}),
        ...(flags.title ? { title: flags.title } : {}),
      });
      out.compose(created, () => {
        out.line(`created subscription ${created.id}`);
        out.record(created, subscriptionFields);
        if (created.secret)
          out.line(`\nits signing secret, to verify deliveries with:\n\n    ${created.secret}\n`);
      });
      if (created.secret) out.note('Store this secret now: it will not be shown again.');
    });

  scopeOptions(
    notify.command('list').description("list a repository's or an organization's subscriptions"),
  ).action(async (flags: ScopeFlags, command: Command) => {
    const collection = collectionOf(flags);
    const { api, out } = await apiContext(command);
    const { subscriptions } = await api.get<{ subscriptions: SubscriptionResource[] }>(collection);
    out.list(subscriptions, subscriptionColumns, `${flags.repo ?? flags.org} has no subscriptions`);
  });

  notify
    .command('show')
    .description('show a subscription (never its secret)')
    .argument('<id>', 'the subscription id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      out.record(await api.get<SubscriptionResource>(subscriptionPath(id)), subscriptionFields);
    });

  for (const [name, enabled, description] of [
    ['enable', true, 'deliver to a subscription again (after Slipway disabled it, or you did)'],
    ['disable', false, 'stop delivering to a subscription until it is enabled again'],
  ] as const) {
    notify
      .command(name)
      .description(description)
      .argument('<id>', 'the subscription id')
      .action(async (id: string, _flags: unknown, command: Command) => {
        const { api, out } = await apiContext(command);
        const changed = await api.patch<SubscriptionResource>(subscriptionPath(id), { enabled });
        out.done(`subscription ${changed.id} is ${changed.enabled ? 'enabled' : 'disabled'}`, changed);
      });
  }

  notify
    .command('delete')
    .description('delete a subscription')
    .argument('<id>', 'the subscription id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(subscriptionPath(id));
      out.done(`deleted subscription ${id}`, { deleted: id });
    });

  notify
    .command('test')
    .description('send a sample event (marked test: true) to a subscription alone')
    .argument('<id>', 'the subscription id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const delivery = await api.post<DeliveryResource>(`${subscriptionPath(id)}/test`);
      out.done(`queued a test ${delivery.eventKind} event as delivery ${delivery.id}`, delivery);
      out.note(`See how it went: slipway notify deliveries ${id}`);
    });

  notify
    .command('deliveries')
    .description("list a subscription's deliveries, newest first")
    .argument('<id>', 'the subscription id')
    .addOption(
      new Option('--status <status>', 'only deliveries in this state').choices([
        'pending',
        'delivered',
        'dead',
        'skipped',
      ]),
    )
    .addOption(limitOption('deliveries', 20))
    .action(async (id: string, flags: { status?: string; limit: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      const page = await collect(flags.limit, async (before: string | undefined, limit) => {
        const { deliveries, next } = await api.get<{ deliveries: DeliveryResource[]; next?: string }>(
          `${subscriptionPath(id)}/deliveries`,
          { status: flags.status, before, limit },
        );
        return { items: deliveries, next };
      });
      out.page(page, deliveryColumns, 'no deliveries');
    });

  notify
    .command('delivery')
    .description('show one delivery and each attempt at it')
    .argument('<id>', 'the subscription id')
    .argument('<delivery>', 'the delivery id')
    .action(async (id: string, deliveryId: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const delivery = await api.get<DeliveryResource>(
        subscriptionPath(id) + path`/deliveries/${deliveryId}`,
      );
      out.compose(delivery, () => {
        out.record(delivery, deliveryFields);
        out.line('');
        out.list(delivery.attemptLog, attemptColumns, 'no attempts yet');
      });
    });

  notify
    .command('replay')
    .description('send a delivery again, with the same id and payload, whatever its status')
    .argument('<id>', 'the subscription id')
    .argument('<delivery>', 'the delivery id')
    .action(async (id: string, deliveryId: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const delivery = await api.post<DeliveryResource>(
        subscriptionPath(id) + path`/deliveries/${deliveryId}/replay`,
      );
      out.done(`queued delivery ${delivery.id} again`, delivery);
    });
}
