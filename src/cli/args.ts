/**
 * Command-line parsing shared by the commands, from the usage table (cli/usage-table.ts):
 * node:util parseArgs, errors as ConfigError; an unknown option names the closest known one.
 */
import { parseArgs } from 'node:util';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { suggestKey } from '../config/keys.ts';
import { findCommand, HELP_OPTION, type CommandSpec } from './usage-table.ts';

export type ArgValue = string | boolean | string[] | undefined;

export interface ParsedArgs {
  readonly values: Readonly<Record<string, ArgValue>>;
  /** The command's positional argument, when its spec has one. */
  readonly positional: string | undefined;
}

function parseOptions(spec: CommandSpec, withHelp: boolean) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean; default?: string | boolean }> = {};
  for (const o of withHelp ? [...spec.options, HELP_OPTION] : spec.options) {
    options[o.name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.default !== undefined ? { default: o.default } : o.type === 'boolean' ? { default: false } : {}),
    };
  }
  return options;
}

/** Whether argv asks for help (`--help` or `-h` as an option, not as another option's value). */
export function wantsHelp(spec: CommandSpec, argv: readonly string[]): boolean {
  const { tokens } = parseArgs({ args: [...argv], options: parseOptions(spec, true), strict: false, allowPositionals: true, tokens: true });
  return tokens.some((t) => t.kind === 'option' && t.name === 'help');
}

/** Parses a command's argv by its spec; every mistake (unknown option with a suggestion, missing value, extra argument) at once. */
export function parseCommandArgs(command: string, argv: readonly string[]): ParsedArgs {
  const spec = findCommand(command);
  if (!spec) throw new Error(`no usage-table entry for ${command}`);
  const at = `replguard ${command}`;
  const problems: ConfigProblem[] = [];
  const longNames = spec.options.map((o) => o.name);
  const { tokens } = parseArgs({ args: [...argv], options: parseOptions(spec, false), strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option' || longNames.includes(token.name)) continue;
    // A typo (--confg) or a longer spelling of a known option (--config-file).
    const guess = suggestKey(token.name, longNames) ?? longNames.find((n) => token.name.startsWith(n) || n.startsWith(token.name));
    problems.push({
      path: at,
      message: `unknown option ${token.rawName}; ${guess ? `did you mean --${guess}?` : `known options: ${longNames.map((n) => `--${n}`).join(', ') || 'none'}`} (replguard ${command} --help)`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: parseOptions(spec, false), strict: true, allowPositionals: true });
  } catch (err) {
    throw new ConfigError([{ path: at, message: `${(err as Error).message.split('\n')[0]} (replguard ${command} --help)` }]);
  }
  const max = spec.positional ? 1 : 0;
  if (parsed.positionals.length > max) {
    problems.push({ path: at, message: `unexpected argument "${parsed.positionals[max]}" (replguard ${command} --help)` });
  }
  if (spec.positional && parsed.positionals.length === 0) {
    problems.push({ path: at, message: `${spec.positional.name} is required: ${spec.positional.description} (replguard ${command} --help)` });
  }
  for (const o of spec.options) {
    if (o.required && spec.checksRequired !== false && (parsed.values[o.name] === undefined || parsed.values[o.name] === '')) {
      problems.push({ path: at, message: `--${o.name} is required (replguard ${command} --help)` });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { values: parsed.values as Record<string, ArgValue>, positional: parsed.positionals[0] };
}

/** A string option's value (parseArgs has checked its type). */
export function stringArg(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function stringsArg(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : [];
}

export function flagArg(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}
