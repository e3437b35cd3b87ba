#!/usr/bin/env node
/** argv -> exit code. The only place that exits the process. */
import process from 'node:process';
import { ConfigError } from './config/errors.ts';
import { suggestKey } from './config/keys.ts';
import { wantsHelp } from './cli/args.ts';
import { renderHelp, renderOverview } from './cli/help.ts';
import { COMMANDS, findCommand } from './cli/usage-table.ts';

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command of the usage table (cli/usage-table.ts) and the module that runs it, loaded when
 * that command runs: `serve` does not keep the other commands' libraries resident (`doctor`'s
 * ioredis alone is about 20 MiB), nor does a short command pay for the guard's.
 */
const RUN: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./cli/serve.ts')).run,
  'check-config': async () => (await import('./cli/check-config.ts')).run,
  doctor: async () => (await import('./cli/doctor.ts')).run,
  'migrate-config': async () => (await import('./cli/migrate-config.ts')).run,
  'dev-pki': async () => (await import('./cli/dev-pki.ts')).run,
  'gen-token': async () => (await import('./cli/gen-token.ts')).run,
  'make-jwt': async () => (await import('./cli/make-jwt.ts')).run,
  sign: async () => {
    const { run } = await import('./cli/sign.ts');
    return (argv) => run(argv);
  },
  registry: async () => (await import('./cli/registry.ts')).run,
  demo: async () => (await import('./cli/demo.ts')).run,
  completion: async () => (await import('./cli/completion.ts')).run,
  version: async () => (await import('./cli/version.ts')).run,
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
    const { versionLine } = await import('./cli/version.ts');
    process.stdout.write(`${versionLine()}\n`);
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
    return await (await run())(rest);
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
