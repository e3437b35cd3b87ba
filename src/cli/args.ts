/** Command-line parsing shared by the commands: node:util parseArgs, errors as ConfigError. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/errors.ts';

export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError([{ path: `replguard ${command}`, message: (err as Error).message }]);
  }
}

export function required(command: string, flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new ConfigError([{ path: `replguard ${command}`, message: `--${flag} is required` }]);
  return value;
}
