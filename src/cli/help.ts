/** `--help` text, the command overview and the README's command list, all from cli/usage-table.ts. */
import { COMMANDS, HELP_OPTION, type CommandSpec, type OptionSpec } from './usage-table.ts';

function flag(option: OptionSpec): string {
  const name = option.short ? `-${option.short}` : `--${option.name}`;
  return option.value ? `${name} ${option.value}` : name;
}

/** `check-config -c FILE [--print]`: required options bare, the others in brackets. */
export function synopsis(spec: CommandSpec): string {
  const parts = [spec.name];
  for (const option of spec.options) {
    const text = `${flag(option)}${option.multiple ? ' ...' : ''}`;
    parts.push(option.required ? text : `[${text}]`);
  }
  if (spec.positional) parts.push(spec.positional.name);
  return parts.join(' ');
}

/** One option as `-c, --config FILE`. */
export function optionLabel(option: OptionSpec): string {
  const long = `--${option.name}${option.value ? ` ${option.value}` : ''}`;
  return option.short ? `-${option.short}, ${long}` : long;
}

export function optionText(option: OptionSpec): string {
  const notes = [option.required ? 'required' : undefined, option.multiple ? 'repeatable' : undefined, option.default !== undefined ? `default ${option.default}` : undefined].filter(Boolean);
  return `${option.description}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}

function wrap(text: string, indent: string, width = 96): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

/** A command's `--help`: usage, description, options with defaults, examples. */
export function renderHelp(spec: CommandSpec): string {
  const options = [...spec.options, HELP_OPTION];
  const labels = options.map(optionLabel);
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  const out = [`usage: replguard ${synopsis(spec)}`, '', wrap(spec.description, ''), ''];
  if (spec.positional) out.push('arguments:', `  ${spec.positional.name.padEnd(width)}${spec.positional.description}`, '');
  out.push('options:');
  options.forEach((option, i) => {
    out.push(`  ${labels[i]!.padEnd(width)}${optionText(option)}`);
  });
  out.push('', spec.examples.length > 1 ? 'examples:' : 'example:', ...spec.examples.map((e) => `  ${e}`), '');
  return out.join('\n');
}

/** `replguard --help`: every command with its one-line summary. */
export function renderOverview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'usage: replguard <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'replguard <command> --help   usage, options, defaults and an example of one command',
    'replguard --version          the version',
    '',
  ].join('\n');
}

/** The README's "Command line" block: the synopsis of each command and its summary. */
export function renderCommandList(): string {
  const lines: string[] = [];
  for (const c of COMMANDS) {
    const head = `replguard ${synopsis(c)}`;
    if (head.length <= 40) lines.push(`${head.padEnd(41)}${c.summary}`);
    else lines.push(head, `${' '.repeat(41)}${c.summary}`);
  }
  return `${lines.join('\n')}\n`;
}

/** roff text: backslashes, hyphens and a leading control character escaped. */
function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1');
}

/** The man page replguard.1 (docs/replguard.1), every command and option from the usage table. */
export function renderManPage(version: string): string {
  const out = [
    '.\\" Generated from src/cli/usage-table.ts by scripts/cli-docs.mjs; edit the table, not this file.',
    `.TH REPLGUARD 1 "" "replguard ${version}" "User Commands"`,
    '.SH NAME',
    'replguard \\- TLS/mTLS guard in front of a replication endpoint, and the signer that feeds it',
    '.SH SYNOPSIS',
    '.B replguard',
    '.I command',
    '[\\fIoptions\\fR]',
    '.br',
    '.B replguard',
    '.I command',
    '.B \\-\\-help',
    '.br',
    '.B replguard \\-\\-version',
    '.SH DESCRIPTION',
    roff('replguard runs as the guard (role: backup) in front of an unmodified backup, or as the signer (role: primary) beside an unmodified primary, as its YAML config file says. Every command answers --help with its usage, options, defaults and an example.'),
    '.SH COMMANDS',
  ];
  for (const c of COMMANDS) {
    out.push('.SS', `.B replguard ${roff(synopsis(c))}`, roff(c.description));
    if (c.positional) out.push('.TP', `.I ${roff(c.positional.name)}`, roff(c.positional.description));
    for (const o of c.options) out.push('.TP', `.B ${roff(optionLabel(o))}`, roff(optionText(o)));
    out.push('.PP', 'Example:', '.RS', '.nf', ...c.examples.map(roff), '.fi', '.RE');
  }
  out.push(
    '.SH EXIT STATUS',
    roff('0 success (including a drained SIGTERM and --help); 1 unexpected failure (doctor: a check failed); 2 operator error (config or command line: every problem is listed with its key path and a fix).'),
    '.SH FILES',
    roff('config/backup.yaml and config/primary.yaml: every key with its default; config/replguard.schema.json: the JSON Schema of both roles for editors.'),
    '.SH SEE ALSO',
    roff('README.md, docs/operations.md, docs/migration.md'),
    '',
  );
  return out.join('\n');
}
