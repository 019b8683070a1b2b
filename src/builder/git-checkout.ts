import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { SlipwayError } from '../errors.ts';
import { sshHostOf, type SshHost } from '../triggers/ssh-url.ts';
import { isSshCloneUrl } from '../triggers/trigger-settings.ts';
import type { CloneSecrets } from '../triggers/trigger-store.ts';
import { ExecutorOutput } from './executors/executor-output.ts';
import { BuildFailedError, type LineListener } from './executors/executor.ts';
import { runStreamed } from './executors/run-process.ts';
import type { SecretMasker } from './output/secret-masker.ts';

export interface CheckoutRequest {
  /** An empty or missing directory to check the source out into. */
  dir: string;
  url: string;
  /** The full ref (refs/heads/main); fetched when there is no commit, or when the commit cannot be fetched alone. */
  ref: string | null;
  commit: string | null;
  /** What to clone with, and for SSH the host keys the server must present (none: not checked). */
  credentials: CloneSecrets;
  masker: SecretMasker;
  onLine: LineListener;
  signal?: AbortSignal;
  git?: string;
  /** The environment git runs in; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** After cancelling, how long git gets to stop before it is killed. Default 5 s. */
  killGraceMs?: number;
}

export class CheckoutError extends SlipwayError {
  constructor(message: string, options?: ErrorOptions) {
    super('SLW_ERR_BUILD_CHECKOUT', message, options);
  }
}

const commitPattern = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/**
 * Checks out exactly one commit, shallow: `git init`, `git fetch --depth 1 <url> <commit>` (or the ref,
 * recording the commit it resolves to), `git checkout`. Credentials never reach a command line, a URL
 * or the output: a token goes in an `http.extraHeader` set through git's environment configuration, a
 * deploy key in a 0600 file of its own that ssh is pointed at. Over SSH the server must present a key of
 * the trigger's known hosts; without them a new key is accepted, with a warning. The commit checked out.
 */
export async function checkoutCommit(request: CheckoutRequest): Promise<string> {
  if (request.commit !== null && !commitPattern.test(request.commit)) {
    throw new CheckoutError(`"${request.commit}" is not a full commit id`);
  }
  if (request.commit === null && request.ref === null) throw new CheckoutError('nothing to check out');
  const output = new ExecutorOutput(request.masker, request.onLine);
  const secretDir = await mkdtemp(join(tmpdir(), 'slipway-git-'));
  try {
    const env = await gitEnvironment(request, secretDir);
    const server = sshServerOf(request.url);
    const { deployKey, knownHosts } = request.credentials;
    if (server && deployKey && !knownHosts) {
      output.line(
        'stderr',
        `warning: the host key of ${server.display} was not checked: set knownHosts on the trigger, e.g. from \`ssh-keyscan -p ${server.port} ${server.host}\``,
      );
    }
    const git = (args: string[], phase = 'clone') => {
      output.line('stdout', `$ git ${args.join(' ')}`);
      return runStreamed({
        command: request.git ?? 'git',
        args: ['-C', request.dir, ...args],
        env,
        output,
        phase,
        killGraceMs: request.killGraceMs ?? 5_000,
        ...(request.signal && { signal: request.signal }),
      }).catch((error: unknown) => {
        throw hostKeyRefused(error, server) ?? accessRefused(error, request) ?? error;
      });
    };
    await runStreamed({
      command: request.git ?? 'git',
      args: ['init', '--quiet', request.dir],
      env,
      output,
      phase: 'clone',
      killGraceMs: 1_000,
    });
    const fetch = ['fetch', '--depth', '1', '--no-tags', '--no-write-fetch-head', '--', request.url];
    if (request.commit !== null) {
      try {
        await git([...fetch, `${request.commit}:refs/slipway/build`]);
      } catch (error) {
        // Some servers refuse a commit asked for by id; the ref's history then has to contain it.
        if (request.ref === null || !(error instanceof BuildFailedError)) throw error;
        output.line('stderr', `The server would not send ${request.commit} alone; fetching ${request.ref}.`);
        await git([
          'fetch',
          '--no-tags',
          '--no-write-fetch-head',
          '--',
          request.url,
          `+${request.ref}:refs/slipway/ref`,
        ]);
      }
      await git(['checkout', '--quiet', '--detach', request.commit]);
    } else {
      await git([...fetch, `+${request.ref}:refs/slipway/build`]);
      await git(['checkout', '--quiet', '--detach', 'refs/slipway/build']);
    }
    const head = await execa(request.git ?? 'git', ['-C', request.dir, 'rev-parse', 'HEAD'], {
      env,
      extendEnv: false,
      stdin: 'ignore',
    });
    const commit = head.stdout.trim();
    if (request.commit !== null && commit !== request.commit) {
      throw new CheckoutError(`checked out ${commit} where ${request.commit} was asked for`);
    }
    output.line('stdout', `Checked out ${commit}${request.ref ? ` (${request.ref})` : ''}`);
    return commit;
  } finally {
    await rm(secretDir, { recursive: true, force: true });
  }
}

/**
 * A clone the server refused to authenticate, said plainly: git's own words for it ("could not read
 * Username": the server wants credentials it did not take) send users looking in the wrong place.
 */
function accessRefused(error: unknown, request: CheckoutRequest): CheckoutError | undefined {
  if (!(error instanceof BuildFailedError)) return undefined;
  const output = error.outputTail.join('\n');
  const { token, deployKey } = request.credentials;
  if (/could not read Username|Authentication failed|returned error: 40[13]/.test(output)) {
    return new CheckoutError(
      token
        ? `${request.url} refused the trigger's token: check its clone credentials (token and user name), and that they may read the repository`
        : `${request.url} asks for credentials: give the trigger a token`,
      { cause: error },
    );
  }
  if (/Permission denied \(publickey/.test(output)) {
    return new CheckoutError(
      deployKey
        ? `${request.url} refused the trigger's deploy key: check that the repository has its public key`
        : `${request.url} asks for an SSH key: give the trigger a deploy key`,
      { cause: error },
    );
  }
  return undefined;
}

/** The host and port ssh connects to for an SSH clone URL; `display` as known_hosts names it. */
interface SshServer extends SshHost {
  display: string;
}

function sshServerOf(url: string): SshServer | null {
  const server = sshHostOf(url);
  if (!server) return null;
  const { host, port } = server;
  return { host, port, display: port === 22 ? host : `[${host}]:${port}` };
}

function hostKeyRefused(error: unknown, server: SshServer | null): CheckoutError | undefined {
  if (!server || !(error instanceof BuildFailedError)) return undefined;
  const output = error.outputTail.join('\n');
  if (!/Host key verification failed/.test(output)) return undefined;
  const unknown = /No \S+ host key is known for/.test(output);
  const presented = /key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+)/.exec(output)?.[1];
  return new CheckoutError(
    `the host key of ${server.display} does not match the trigger's known hosts${
      unknown ? ` (they hold no key of the type it presents for ${server.display})` : ''
    }${presented ? `; it presented ${presented}` : ''}: nothing was cloned. If the server's key really changed, check the new one and update knownHosts (\`ssh-keyscan -p ${server.port} ${server.host}\` shows it); otherwise someone may be between the builder and the server`,
    { cause: error },
  );
}

async function gitEnvironment(request: CheckoutRequest, secretDir: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...(request.env ?? process.env),
    GIT_TERMINAL_PROMPT: '0',
    // Whatever the URL says, no transport that runs commands (ext::) or reaches elsewhere.
    GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
    GIT_CONFIG_COUNT: '0',
  };
  delete env.GIT_ASKPASS;
  delete env.SSH_ASKPASS;
  const { token, username, deployKey, knownHosts } = request.credentials;
  if (token) {
    const basic = Buffer.from(`${username ?? 'x-access-token'}:${token}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  if (deployKey || (knownHosts && isSshCloneUrl(request.url))) {
    const ssh = ['ssh', '-o BatchMode=yes'];
    if (deployKey) {
      const keyFile = await writePrivateFile(secretDir, 'deploy-key', deployKey);
      ssh.push(`-i ${shellQuote(keyFile)}`, '-o IdentitiesOnly=yes');
    }
    const knownHostsFile = knownHosts
      ? await writePrivateFile(secretDir, 'known_hosts', knownHosts)
      : join(secretDir, 'known_hosts');
    ssh.push(
      // Without known hosts a new key is accepted (the build log says so); with them, only they count.
      `-o StrictHostKeyChecking=${knownHosts ? 'yes' : 'accept-new'}`,
      `-o UserKnownHostsFile=${shellQuote(knownHostsFile)}`,
      // Not the builder machine's file: a build accepts the same keys on every builder, the trigger's.
      '-o GlobalKnownHostsFile=/dev/null',
      // No "Permanently added … to the list of known hosts": the file is gone with the checkout.
      '-o LogLevel=ERROR',
    );
    env.GIT_SSH_COMMAND = ssh.join(' ');
  }
  return env;
}

/** Writes `content` to a 0600 file in `dir`, ending in a newline; its path. */
async function writePrivateFile(dir: string, name: string, content: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, content.endsWith('\n') ? content : `${content}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
