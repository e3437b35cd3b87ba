/** `replguard check-config -c FILE`: every check `serve` makes at start-up, without serving. */
import { loadRoleConfig } from './role-config.ts';
import { loadTlsMaterial } from '../tls/material.ts';
import { parseCommandArgs, stringArg } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('check-config', argv);
  const loaded = loadRoleConfig(stringArg(args, 'config')!);
  // The signer's files are all loaded by its validation (config/validate.ts); the guard's TLS
  // material is checked as a set here, as serve does.
  if (loaded.role === 'backup') loadTlsMaterial(loaded.config.tls);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  const summary = loaded.role === 'backup'
    ? `${loaded.config.peers.length} peers`
    : `backup ${loaded.config.backup.id} at ${loaded.config.backup.url}`;
  process.stdout.write(`${loaded.file}: ok (role ${loaded.role}, ${summary})\n`);
  return 0;
}
