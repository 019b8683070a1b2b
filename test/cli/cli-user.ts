import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { adminPassword, adminUser, startSecuredSlipway } from '../helpers/auth.ts';
import type { TestSlipway, TestSlipwayOptions } from '../helpers/slipway.ts';

const bin = fileURLToPath(new URL('../../bin/slipway.js', import.meta.url));

export interface RunOptions {
  /** Added to (or, when empty, clearing) the variables the CLI runs with. */
  env?: Record<string, string>;
  stdin?: string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Someone at a terminal: their own home and config directory, running `node bin/slipway.js` as a
 * process with nothing from the test's environment but PATH.
 */
export class CliUser {
  readonly home: string;

  private constructor(home: string) {
    this.home = home;
  }

  static async create(): Promise<CliUser> {
    return new CliUser(await mkdtemp(join(tmpdir(), 'slipway-cli-')));
  }

  /** $XDG_CONFIG_HOME, which `slipway login` writes into. */
  get configHome(): string {
    return join(this.home, 'xdg-config');
  }

  run(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: this.home,
      XDG_CONFIG_HOME: this.configHome,
      ...options.env,
    };
    const child = spawn(process.execPath, [bin, ...args], { cwd: this.home, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdin.end(options.stdin ?? '');
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  /** Runs a command that must succeed; its stdout. */
  async ok(args: readonly string[], options: RunOptions = {}): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0) {
      throw new Error(`slipway ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
    }
    return result.stdout;
  }

  /** Runs a command that must succeed with --json; what it printed, parsed. */
  async json<T>(args: readonly string[], options: RunOptions = {}): Promise<T> {
    return JSON.parse(await this.ok(['--json', ...args], options)) as T;
  }

  async login(url: string, username: string, password: string): Promise<void> {
    await this.ok(['login', url, '--username', username, '--password', password]);
  }

  async remove(): Promise<void> {
    await rm(this.home, { recursive: true, force: true });
  }
}

/**
 * The rows of a table the CLI printed, keyed by heading. Cells are cut at the heading's column, so a
 * row that does not line up with its heading reads wrong.
 */
export function tableRows(stdout: string): Array<Record<string, string>> {
  const [heading, ...lines] = stdout.trimEnd().split('\n');
  const columns = [...(heading ?? '').matchAll(/\S+(?: \S+)*/g)].map((match) => ({
    name: match[0].toLowerCase(),
    start: match.index,
  }));
  return lines.map((line) =>
    Object.fromEntries(
      columns.map((column, index) => [
        column.name,
        line.slice(column.start, columns[index + 1]?.start).trim(),
      ]),
    ),
  );
}

/** The `field: value` lines the CLI prints for one resource. */
export function recordFields(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trimEnd()
      .split('\n')
      .map((line) => /^([^:]+):\s+(.*)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!]),
  );
}

/** The arguments of `slipway trigger create` for `repository` on a custom git server, then `options`. */
export function customGitTriggerArgs(repository: string, cloneUrl: string, ...options: string[]): string[] {
  return ['trigger', 'create', '--repo', repository, '--custom-git', '--clone-url', cloneUrl, ...options];
}

/** The arguments of `slipway build start` for `repository` cloned from `cloneUrl`, then `options`. */
export function buildStartArgs(repository: string, cloneUrl: string, ...options: string[]): string[] {
  return ['build', 'start', '--repo', repository, '--clone-url', cloneUrl, ...options];
}

export interface CliGateway {
  /** The gateway, with authentication on. */
  slipway: TestSlipway;
  /** The superuser, logged in. */
  root: CliUser;
  /** Someone else at a terminal, not logged in; removed after the file's tests. */
  newUser(): Promise<CliUser>;
  /** A user account the superuser creates, logged in at its own terminal. */
  signedUpUser(name: string): Promise<CliUser>;
}

/** One gateway and a logged-in superuser for a test file, started before its tests and stopped after. */
export function useCliGateway(options: TestSlipwayOptions = {}): CliGateway {
  const users: CliUser[] = [];
  const gateway: CliGateway = {
    slipway: undefined as unknown as TestSlipway,
    root: undefined as unknown as CliUser,
    async newUser() {
      const user = await CliUser.create();
      users.push(user);
      return user;
    },
    async signedUpUser(name) {
      const password = `${name}-password-1`;
      await gateway.root.ok(['admin', 'user', 'create', name, '--password', password]);
      const user = await gateway.newUser();
      await user.login(gateway.slipway.url, name, password);
      return user;
    },
  };
  beforeAll(async () => {
    gateway.slipway = await startSecuredSlipway(options);
    gateway.root = await gateway.newUser();
    await gateway.root.login(gateway.slipway.url, adminUser, adminPassword);
  });
  afterAll(async () => {
    await Promise.all(users.map((user) => user.remove()));
    await gateway.slipway?.stop();
  });
  return gateway;
}
