import { z } from 'zod';
import { invalid } from '../errors.ts';
import { payloadError } from './errors.ts';
import { signSha256, verifySha256Signature, type HeaderValue } from './hub-signature.ts';
import { isoTime, isZeroObjectId, objectIdSchema, parsePushedRef, type PushEvent } from './push-event.ts';

/*
 * Custom git: any git server can trigger builds by POSTing a small JSON payload,
 *
 *   { "commit": "<sha>", "ref": "refs/heads/main", "cloneUrl": "git@git.example.com:team/app.git", … }
 *
 * signed the way GitHub signs its deliveries: `X-Slipway-Signature-256: sha256=<hex HMAC-SHA256 of the
 * raw body, keyed with the trigger's secret>`. `postReceiveHookScript` writes a ready `post-receive` hook
 * that does this for a bare repository.
 */

export const customSignatureHeader = 'X-Slipway-Signature-256';

/** `sha256=<hex>` for `body`: the value of the X-Slipway-Signature-256 header. */
export function signCustomPayload(secret: string, body: string): Promise<string> {
  return signSha256(secret, body);
}

/** Refuses the delivery (WebhookAuthError, 401) unless its signature matches `secret`. */
export function verifyCustomSignature(
  secret: string,
  rawBody: Buffer | string,
  signatureHeader: HeaderValue,
): Promise<void> {
  return verifySha256Signature(secret, rawBody, signatureHeader, customSignatureHeader);
}

/**
 * Why a clone URL is refused, or null. Accepted: http(s)://, ssh://, git://, file:// and scp-style
 * `user@host:path`. Refused: git's `<transport>::<address>` helper syntax (`ext::` runs a command), a
 * leading "-" (read as an option), whitespace, and a password inside an http(s) URL (it would be stored
 * and shown with every build; give the trigger credentials instead).
 */
export function cloneUrlProblem(url: string): string | null {
  if (url === '') return 'the clone URL is empty';
  if (/[\s\u0000-\u001f\u007f]/.test(url))
    return 'a clone URL cannot contain whitespace or control characters';
  if (url.startsWith('-')) return 'a clone URL cannot start with "-"';
  if (url.includes('::')) return 'git remote-helper URLs ("transport::address") are not accepted';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return /^(?:[^@/:]+@)?[^/:]+:.+$/.test(url)
      ? null
      : 'expected an http(s)://, ssh://, git:// or file:// URL, or user@host:path';
  }
  if (!['http', 'https', 'ssh', 'git', 'file'].includes(scheme)) {
    return `"${scheme}://" clone URLs are not accepted; use http(s)://, ssh://, git:// or file://`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'the clone URL cannot be parsed';
  }
  if ((scheme === 'http' || scheme === 'https') && parsed.password !== '') {
    return 'the clone URL holds a password; give the trigger credentials instead';
  }
  return null;
}

const cloneUrlSchema = z.string({ error: 'expected the URL to clone from' }).superRefine((url, ctx) => {
  const problem = cloneUrlProblem(url);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** The payload a custom git server sends. Fields beyond these are ignored. */
export const customPayloadSchema = z.object({
  commit: objectIdSchema,
  ref: z
    .string({ error: 'expected the pushed ref, such as "refs/heads/main"' })
    .regex(/^refs\/(?:heads|tags)\/.+$/, {
      error: 'expected a branch or tag ref: "refs/heads/…" or "refs/tags/…"',
    }),
  cloneUrl: cloneUrlSchema,
  before: objectIdSchema.optional(),
  /** Defaults to the clone URL's path without ".git": `team/app`. */
  repository: z.string().min(1).optional(),
  defaultBranch: z.string().min(1).optional(),
  author: z
    .object({ name: z.string(), email: z.string().optional(), username: z.string().optional() })
    .optional(),
  message: z.string().optional(),
  compareUrl: z.string().optional(),
  pushedAt: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date and time' }).optional(),
});

export type CustomPayload = z.input<typeof customPayloadSchema>;

export type CustomDelivery = { kind: 'push'; event: PushEvent };

/** Reads a verified delivery; a malformed payload is a WebhookPayloadError (400). */
export function parseCustomPayload(payload: unknown): CustomDelivery {
  const parsed = customPayloadSchema.safeParse(payload);
  if (!parsed.success) throw payloadError('custom git payload', parsed.error);
  const push = parsed.data;
  const ref = parsePushedRef(push.ref)!;
  const http = /^https?:\/\//i.test(push.cloneUrl);
  const ssh = /^ssh:\/\//i.test(push.cloneUrl) || !push.cloneUrl.includes('://');
  const event: PushEvent = {
    provider: 'custom',
    ref,
    commit: push.commit,
    deleted: isZeroObjectId(push.commit),
    cloneUrl: {
      url: push.cloneUrl,
      ...(http ? { http: push.cloneUrl } : {}),
      ...(ssh ? { ssh: push.cloneUrl } : {}),
    },
    repository: push.repository ?? repositoryFromCloneUrl(push.cloneUrl),
    // A sender that says nothing about who pushed gets a placeholder, so every build has an author.
    author: push.author ?? { name: 'unknown' },
  };
  if (push.before && !isZeroObjectId(push.before)) event.before = push.before;
  if (push.defaultBranch) event.defaultBranch = push.defaultBranch;
  if (push.message !== undefined) event.message = push.message;
  if (push.compareUrl) event.compareUrl = push.compareUrl;
  const pushedAt = isoTime(push.pushedAt);
  if (pushedAt) event.pushedAt = pushedAt;
  return { kind: 'push', event };
}

/** `git@git.example.com:team/app.git` and `https://git.example.com/team/app.git` → `team/app`. */
function repositoryFromCloneUrl(url: string): string {
  const path = url.includes('://') ? new URL(url).pathname : url.slice(url.indexOf(':') + 1);
  return (
    path
      .replace(/^\/+|\/+$/g, '')
      .replace(/\.git$/, '')
      .replace(/^~[^/]*\//, '') || url
  );
}

export type HookSecret =
  /** The hook reads the secret from this environment variable of the git server's receive-pack. */
  | { env: string }
  /** The secret is written into the hook: keep the file readable only by the git user. */
  | { value: string };

export interface PostReceiveHookOptions {
  /** The trigger's webhook URL on Slipway. */
  webhookUrl: string;
  secretEnvOrValue: HookSecret;
  /** What Slipway's builder clones: how the repository is reached from outside the git server. */
  cloneUrl: string;
  /** The repository's name in builds; defaults to the clone URL's path. */
  repository?: string;
}

/**
 * A POSIX sh `post-receive` hook for a bare repository: for every branch or tag the push created or
 * moved (deletions are skipped) it POSTs the custom payload, signed with HMAC-SHA256, with curl, and
 * prints Slipway's answer to the pusher. The secret is never a command's argument, so `ps` on the git
 * server does not show it. Options it cannot use are an ApiError (400). The push has already succeeded
 * when a post-receive hook runs, so the hook always exits 0; a refused or failed request is reported, not
 * fatal.
 */
export function postReceiveHookScript(options: PostReceiveHookOptions): string {
  const url = options.webhookUrl;
  if (!/^https?:\/\/[^\s'"]+$/i.test(url)) {
    throw invalid(`the webhook URL must be an http(s) URL, not ${JSON.stringify(url)}`);
  }
  const problem = cloneUrlProblem(options.cloneUrl);
  if (problem) throw invalid(`cloneUrl: ${problem}`);
  const secret = options.secretEnvOrValue;
  let secretLine: string;
  let secretSource: string;
  if ('env' in secret) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(secret.env)) {
      throw invalid(`"${secret.env}" is not an environment variable name`);
    }
    secretLine = `secret="$${secret.env}"`;
    secretSource = `the ${secret.env} environment variable`;
  } else {
    if (secret.value === '') throw invalid('the secret is empty');
    secretLine = `secret=${shellQuote(secret.value)}`;
    secretSource = 'the value written below (keep this file readable only by the git user)';
  }
  const fixedFields =
    `,"cloneUrl":${JSON.stringify(options.cloneUrl)}` +
    (options.repository ? `,"repository":${JSON.stringify(options.repository)}` : '');

  return String.raw`#!/bin/sh
# Slipway post-receive hook: asks Slipway to build every branch or tag a push creates or moves.
# Install it as hooks/post-receive in the bare repository and make it executable (chmod +x).
# It needs git, openssl and curl. The secret comes from ${secretSource}.
# The push has already succeeded when this runs: a failed request is reported, it does not undo the push.

webhook_url=${shellQuote(url)}
fixed_fields=${shellQuote(fixedFields)}
${secretLine}

if [ -z "$secret" ]; then
  echo "slipway: no webhook secret (${secretSource.replace(/ \(.*\)$/, '')}); no build requested" >&2
  exit 0
fi
for tool in openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "slipway: $tool is not installed on the git server; no build requested" >&2
    exit 0
  fi
done
# The secret goes only through printf, which must be the shell's own: a printf program's arguments,
# like any program's, are visible to every user of the machine.
case "$(command -V printf 2>/dev/null)" in
  *builtin*) ;;
  *) echo "slipway: this shell has no builtin printf to sign with; no build requested" >&2; exit 0 ;;
esac

# HMAC-SHA256 by its definition (RFC 2104): SHA256((K ^ opad) || SHA256((K ^ ipad) || message)), with K
# the secret (or its SHA-256 when longer than a block) zero-padded to SHA-256's 64-byte block. openssl
# only hashes (its -hmac option would take the secret as an argument); printf writes the padded keys.
key_hex=$(printf '%s' "$secret" | od -An -v -tx1)
if [ $(($(printf '%s' "$secret" | wc -c))) -gt 64 ]; then
  key_hex=$(printf '%s' "$secret" | openssl dgst -sha256 -binary | od -An -v -tx1)
fi

# Prints the padded key XORed with the byte $1, as printf escapes (\ooo).
padded_key() {
  escapes='' count=0
  for byte in $key_hex; do
    n=$((0x$byte ^ $1))
    escapes="$escapes\\$((n / 64))$((n / 8 % 8))$((n % 8))"
    count=$((count + 1))
  done
  while [ "$count" -lt 64 ]; do
    escapes="$escapes\\$(($1 / 64))$(($1 / 8 % 8))$(($1 % 8))"
    count=$((count + 1))
  done
  printf '%s' "$escapes"
}
inner_key=$(padded_key $((0x36)))
outer_key=$(padded_key $((0x5c)))

# Prints the hex HMAC-SHA256 of its argument keyed with the secret.
hmac_sha256() {
  { printf "$outer_key"; { printf "$inner_key"; printf '%s' "$1"; } | openssl dgst -sha256 -binary; } |
    openssl dgst -sha256 | sed 's/^.*= *//'
}

# Prints its argument as a JSON string: quotes, backslashes and control characters escaped.
json_string() {
  printf '%s' "$1" | LC_ALL=C awk '
    BEGIN { for (n = 1; n < 32; n++) esc[sprintf("%c", n)] = sprintf("\\u%04x", n)
            esc["\t"] = "\\t"; esc["\r"] = "\\r" }
    { s = ""
      for (i = 1; i <= length($0); i++) {
        c = substr($0, i, 1)
        if (c == "\\") c = "\\\\"; else if (c == "\"") c = "\\\""; else if (c in esc) c = esc[c]
        s = s c
      }
      out = (NR == 1) ? s : out "\\n" s }
    END { printf "\"%s\"", out }'
}

default_branch=$(git symbolic-ref --quiet --short HEAD 2>/dev/null)

while read -r oldrev newrev refname; do
  case "$refname" in
    refs/heads/* | refs/tags/*) ;;
    *) continue ;;
  esac
  case "$newrev" in
    *[!0]*) ;;
    *) echo "slipway: $refname was deleted; nothing to build"; continue ;;
  esac
  if ! commit=$(git rev-parse --verify --quiet "$newrev^{commit}"); then
    echo "slipway: $refname does not point to a commit; nothing to build"
    continue
  fi

  body="{\"commit\":\"$commit\",\"ref\":$(json_string "$refname")$fixed_fields"
  case "$oldrev" in
    *[!0]*) body="$body,\"before\":\"$oldrev\"" ;;
  esac
  if [ -n "$default_branch" ]; then
    body="$body,\"defaultBranch\":$(json_string "$default_branch")"
  fi
  author_name=$(git log -1 --format=%an "$commit")
  author_email=$(git log -1 --format=%ae "$commit")
  message=$(git log -1 --format=%B "$commit")
  body="$body,\"author\":{\"name\":$(json_string "$author_name"),\"email\":$(json_string "$author_email")}"
  body="$body,\"message\":$(json_string "$message"),\"pushedAt\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"

  signature=$(hmac_sha256 "$body")
  if ! answer=$(printf '%s' "$body" | curl --silent --show-error --max-time 30 --request POST \
    --header 'Content-Type: application/json' \
    --header "X-Slipway-Signature-256: sha256=$signature" \
    --data-binary @- --write-out '\n%{http_code}' "$webhook_url"); then
    # curl has said why on stderr, which the pusher sees too.
    echo "slipway: $refname: could not reach Slipway at $webhook_url; no build requested" >&2
    continue
  fi
  status=$(printf '%s\n' "$answer" | tail -n 1)
  reply=$(printf '%s\n' "$answer" | sed '$d')
  case "$status" in
    2??) echo "slipway: $refname: $reply" ;;
    *) echo "slipway: $refname: Slipway answered HTTP $status: $reply" >&2 ;;
  esac
done
exit 0
`;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
