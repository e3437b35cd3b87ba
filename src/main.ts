#!/usr/bin/env node
/** argv -> exit code. The only place that exits the process. */
import process from 'node:process';
import { ConfigError } from './config/errors.ts';
import * as checkConfig from './cli/check-config.ts';
import * as demo from './cli/demo.ts';
import * as devPki from './cli/dev-pki.ts';
import * as genToken from './cli/gen-token.ts';
import * as makeJwt from './cli/make-jwt.ts';
import * as registry from './cli/registry.ts';
import * as serve from './cli/serve.ts';
import * as sign from './cli/sign.ts';
import * as version from './cli/version.ts';

interface Command {
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve,
  'check-config': checkConfig,
  'dev-pki': devPki,
  'gen-token': genToken,
  'make-jwt': makeJwt,
  registry,
  demo,
  sign,
  version,
};

function usage(): string {
  return `usage: replguard <command> [options]\n\n${Object.values(COMMANDS).map((c) => `  ${c.usage}`).join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`replguard: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`replguard: ${String(err)}\n`);
    process.exit(1);
  },
);
