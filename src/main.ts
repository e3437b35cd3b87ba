#!/usr/bin/env node
/** argv -> exit code. The only place that exits the process. */
import process from 'node:process';
import { ConfigError } from './config/errors.ts';
import { suggestKey } from './config/keys.ts';
import { wantsHelp } from './cli/args.ts';
import * as checkConfig from './cli/check-config.ts';
import * as completion from './cli/completion.ts';
import * as demo from './cli/demo.ts';
import * as devPki from './cli/dev-pki.ts';
import * as doctor from './cli/doctor.ts';
import * as genToken from './cli/gen-token.ts';
import { renderHelp, renderOverview } from './cli/help.ts';
import * as makeJwt from './cli/make-jwt.ts';
import * as migrateConfig from './cli/migrate-config.ts';
import * as registry from './cli/registry.ts';
import * as serve from './cli/serve.ts';
import * as sign from './cli/sign.ts';
import { COMMANDS, findCommand } from './cli/usage-table.ts';
import * as version from './cli/version.ts';

/** Each command of the usage table (cli/usage-table.ts) and the module that runs it. */
const RUN: Record<string, (argv: string[]) => Promise<number>> = {
  serve: serve.run,
  'check-config': checkConfig.run,
  doctor: doctor.run,
  'migrate-config': migrateConfig.run,
  'dev-pki': devPki.run,
  'gen-token': genToken.run,
  'make-jwt': makeJwt.run,
  sign: (argv) => sign.run(argv),
  registry: registry.run,
  demo: demo.run,
  completion: completion.run,
  version: version.run,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(renderOverview());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined ? findCommand(rest[0]) : undefined;
    if (name === 'help' && rest[0] !== undefined && !topic) return unknownCommand(rest[0]);
    process.stdout.write(topic ? renderHelp(topic) : renderOverview());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version.versionLine()}\n`);
    return 0;
  }
  const spec = findCommand(name);
  const run = RUN[name];
  if (!spec || !run) return unknownCommand(name);
  try {
    // --help starts nothing: it is answered before the command runs.
    if (wantsHelp(spec, rest)) {
      process.stdout.write(renderHelp(spec));
      return 0;
    }
    return await run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`replguard ${name}: configuration error${err.problems.length > 1 ? 's' : ''}:\n`);
      for (const p of err.problems) process.stderr.write(`  ${p.path || '(file)'}: ${p.message}\n`);
      return 2;
    }
    process.stderr.write(`replguard ${name}: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

function unknownCommand(name: string): number {
  const guess = suggestKey(name, COMMANDS.map((c) => c.name));
  process.stderr.write(`replguard: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''}\n\n${renderOverview()}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`replguard: ${String(err)}\n`);
    process.exit(1);
  },
);
