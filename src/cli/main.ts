import { Command, CommanderError } from 'commander';
import { ConfigError, SlipwayError } from '../errors.ts';
import { registerAdmin } from './commands/admin.ts';
import { registerAudit } from './commands/audit.ts';
import { registerBuilder } from './commands/builder.ts';
import { registerEvict } from './commands/evict.ts';
import { registerGc } from './commands/gc.ts';
import { registerLogin } from './commands/login.ts';
import { registerMirror } from './commands/mirror.ts';
import { registerTrigger } from './commands/trigger.ts';
import { registerBuild } from './commands/build.ts';
import { registerNotify } from './commands/notify.ts';
import { registerOrg } from './commands/org.ts';
import { registerRepo } from './commands/repo.ts';
import { registerRobot } from './commands/robot.ts';
import { registerServe } from './commands/serve.ts';
import { registerToken } from './commands/token.ts';
import { registerWorker } from './commands/worker.ts';
import { CliError } from './errors.ts';

/** Exit statuses: 2 when the command line or the request was wrong, 1 when something else failed. */
const usageExit = 2;
const failureExit = 1;

function buildProgram(): Command {
  // Set before the commands are added, so every subcommand inherits them.
  const program = new Command('slipway')
    .description('Self-hosted container registry gateway')
    .option('--json', 'print results as JSON, as the API returns them')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`slipway: ${text.replace(/^error: /, '')}`) });
  for (const register of [
    registerServe,
    registerWorker,
    registerBuilder,
    registerGc,
    registerEvict,
    registerLogin,
    registerAdmin,
    registerOrg,
    registerRobot,
    registerRepo,
    registerToken,
    registerAudit,
    registerNotify,
    registerMirror,
    registerTrigger,
    registerBuild,
  ])
    register(program);
  return program;
}

/** The exit status for an error, after saying what went wrong on stderr. */
function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    return error.exitCode === 0 ? 0 : usageExit;
  }
  if (error instanceof CliError || error instanceof SlipwayError) {
    console.error(`slipway: ${error.message}`);
    if (error instanceof CliError) return error.exitCode;
    return error instanceof ConfigError ? usageExit : failureExit;
  }
  console.error(`slipway: unexpected error:`, error);
  return failureExit;
}

try {
  await buildProgram().parseAsync();
} catch (error) {
  process.exitCode = report(error);
}
