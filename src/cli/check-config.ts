/**
 * `replguard check-config -c FILE [--print]`: every check `serve` makes at start-up, without
 * serving; every problem in one run; warnings for what will hurt soon (cli/soon-checks.ts);
 * `--print` writes the effective config.
 */
import process from 'node:process';
import YAML from 'yaml';
import { effectiveConfig } from '../config/print.ts';
import { loadTlsMaterial } from '../tls/material.ts';
import { flagArg, parseCommandArgs, stringArg } from './args.ts';
import { loadRoleConfig } from './role-config.ts';
import { soonWarnings } from './soon-checks.ts';

export async function run(argv: string[], now: () => number = Date.now): Promise<number> {
  const args = parseCommandArgs('check-config', argv);
  const loaded = loadRoleConfig(stringArg(args, 'config')!);
  // The signer's files are all loaded by its validation (config/validate.ts); the guard's TLS
  // material is checked as a set here, as serve does.
  const material = loaded.role === 'backup' ? loadTlsMaterial(loaded.config.tls, now()) : undefined;
  const warnings = [...loaded.warnings, ...soonWarnings(loaded, { now: now(), crls: material?.crls })];
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  if (flagArg(args, 'print')) {
    process.stdout.write(`# ${loaded.file}: the effective config (defaults applied; secrets are files, shown by path only)\n`);
    process.stdout.write(YAML.stringify(effectiveConfig(loaded.role, loaded.config), { lineWidth: 0 }));
    return 0;
  }
  const summary = loaded.role === 'backup'
    ? `${loaded.config.peers.length} peers`
    : `backup ${loaded.config.backup.id} at ${loaded.config.backup.url}`;
  process.stdout.write(`${loaded.file}: ok (role ${loaded.role}, ${summary})\n`);
  return 0;
}
