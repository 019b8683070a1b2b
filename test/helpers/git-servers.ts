import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { selfSignedCertificate } from './tls.ts';
import { requireTool, run, waitFor } from './tools.ts';

/** One request a test git server answered. */
export interface GitServerRequest {
  method: string;
  path: string;
  /** The user name of valid Basic credentials, or null. */
  user: string | null;
  status: number;
}

export interface GitHttpServerOptions {
  /** The directory whose bare repositories the server serves, each at /<path under root>. */
  root: string;
  /** The one user name and token (as the Basic password) the server lets in; anyone else gets 401. */
  user: string;
  token: string;
  /** Awaited before each request is answered, while its client waits (e.g. to look at its processes). */
  onRequest?: (request: IncomingMessage) => Promise<void> | void;
}

export interface GitHttpServer {
  /** The HTTPS clone URL of a bare repository under the root. */
  url(bareRepository: string): string;
  /** The server's self-signed certificate (PEM) as a file, for `GIT_SSL_CAINFO`. */
  certificateFile: string;
  readonly requests: GitServerRequest[];
  stop(): Promise<void>;
}

/**
 * A git server over HTTPS on 127.0.0.1 (a self-signed certificate made here) that requires Basic
 * credentials: `git http-backend` behind a Node server, as Apache or nginx would run it.
 */
export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const git = requireTool('git', 'git');
  const { key, cert } = selfSignedCertificate();
  const certificateDir = await mkdtemp(join(tmpdir(), 'slipway-git-https-'));
  const certificateFile = join(certificateDir, 'certificate.pem');
  await writeFile(certificateFile, cert);
  const expected = `Basic ${Buffer.from(`${options.user}:${options.token}`).toString('base64')}`;
  const requests: GitServerRequest[] = [];

  const server = createHttpsServer({ key, cert }, (request, response) => {
    const path = new URL(request.url ?? '/', 'https://git.invalid').pathname;
    const user = request.headers.authorization === expected ? options.user : null;
    const answer = async () => {
      await options.onRequest?.(request);
      if (user === null) {
        request.resume();
        response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('authentication required\n');
        return 401;
      }
      return runHttpBackend(git, options.root, user, request, response);
    };
    answer().then(
      (status) => requests.push({ method: request.method ?? 'GET', path, user, status }),
      (error: unknown) => {
        requests.push({ method: request.method ?? 'GET', path, user, status: 500 });
        response.destroy(error as Error);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (bareRepository) => `https://127.0.0.1:${port}/${relative(options.root, bareRepository)}`,
    certificateFile,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(certificateDir, { recursive: true, force: true });
    },
  };
}

/** Answers a request with `git http-backend` (CGI); the HTTP status it answered with. */
function runHttpBackend(
  git: string,
  root: string,
  user: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<number> {
  const url = new URL(request.url ?? '/', 'https://git.invalid');
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : '';
  };
  const child = spawn(git, ['http-backend'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: request.method ?? 'GET',
      CONTENT_TYPE: header('content-type'),
      HTTP_CONTENT_ENCODING: header('content-encoding'),
      GIT_PROTOCOL: header('git-protocol'),
      REMOTE_USER: user,
      REMOTE_ADDR: request.socket.remoteAddress ?? '',
    },
  });
  request.pipe(child.stdin!);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let status = 200;
    child.once('error', reject);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (response.headersSent) {
        response.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const [name, value] = [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      response.writeHead(status, headers);
      response.write(head.subarray(end + 4));
    });
    child.once('close', (code) => {
      if (!response.headersSent) {
        status = 500;
        response.writeHead(status).end(`git http-backend exited with ${code}\n`);
      } else response.end();
      resolve(status);
    });
  });
}

/** A key pair made with ssh-keygen (ed25519, no passphrase), as OpenSSH writes them. */
export async function sshKeyPair(
  dir: string,
  name: string,
): Promise<{ privateKey: string; publicKey: string }> {
  const sshKeygen = requireTool('ssh-keygen', 'openssh-client');
  const file = join(dir, name);
  await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  return {
    privateKey: await readFile(file, 'utf8'),
    publicKey: (await readFile(`${file}.pub`, 'utf8')).trim(),
  };
}

export interface GitSshServer {
  /** The ssh:// clone URL of a bare repository (an absolute path) on this machine. */
  url(bareRepository: string): string;
  /** The server's host public key, as a known_hosts line would hold it (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  /** What sshd logged so far: connections, accepted and refused keys. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * A throwaway sshd on a free loopback port, running as the current user with a host key, a config and
 * an authorized_keys of its own in `dir` (made when missing). The authorized keys may only run
 * git-shell, as a git server's deploy keys may only fetch and push.
 */
export async function startGitSshServer(dir: string, authorizedKeys: string[]): Promise<GitSshServer> {
  const sshd = requireTool('sshd', 'openssh-server');
  const gitShell = requireTool('git-shell', 'git');
  await mkdir(dir, { recursive: true });
  const hostKey = await sshKeyPair(dir, 'ssh_host_ed25519_key');
  const restricted = `command="${gitShell} -c \\"$SSH_ORIGINAL_COMMAND\\"",restrict`;
  await writeFile(
    join(dir, 'authorized_keys'),
    authorizedKeys.map((key) => `${restricted} ${key}\n`).join(''),
    { mode: 0o600 },
  );
  const user = userInfo().username;
  const config = join(dir, 'sshd_config');
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    await writeFile(
      config,
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PidFile none',
        // The test's directories sit under a world-writable temporary directory.
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${user}`,
        '',
      ].join('\n'),
    );
    await ensurePrivilegeSeparationDirectory(sshd, config);
    const started = await startSshd(sshd, config);
    if (started === 'port taken' && attempt < 5) continue;
    if (started === 'port taken') throw new Error('sshd found no free port in 5 attempts');
    const { child, output } = started;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return {
      url: (bareRepository) => `ssh://${user}@127.0.0.1:${port}${bareRepository}`,
      hostPublicKey: hostKey.publicKey.split(' ').slice(0, 2).join(' '),
      log: output,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  }
}

async function startSshd(
  sshd: string,
  config: string,
): Promise<{ child: ChildProcess; output: () => string } | 'port taken'> {
  // -D: in the foreground, -e: log to stderr; sshd re-executes itself, so it needs its absolute path.
  const child = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  const outcome = await waitFor('sshd to listen', () => {
    if (/Server listening on/.test(log)) return 'listening';
    if (child.exitCode === null) return undefined;
    if (/Address already in use/.test(log)) return 'port taken';
    throw new Error(`sshd exited with ${child.exitCode}: ${log}`);
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return outcome === 'port taken' ? outcome : { child, output: () => log };
}

/**
 * sshd started by root wants its privilege separation directory (which the service manager makes at
 * boot, and a machine that never ran the service lacks); sshd -t names it.
 */
async function ensurePrivilegeSeparationDirectory(sshd: string, config: string): Promise<void> {
  const check = await run(sshd, ['-t', '-f', config]).catch((error: Error) => error);
  if (!(check instanceof Error)) return;
  const missing = /Missing privilege separation directory: (\/\S+)/.exec(check.message)?.[1];
  if (!missing) throw check;
  await mkdir(missing, { recursive: true, mode: 0o755 });
  await run(sshd, ['-t', '-f', config]);
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createTcpServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
