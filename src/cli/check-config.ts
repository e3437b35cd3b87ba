/** `replguard check-config -c FILE`: every check `serve` makes at start-up, without serving. */
import { loadConfig } from '../config/load.ts';
import { loadTlsMaterial } from '../tls/material.ts';
import { parseCommandArgs, required } from './args.ts';

export const usage = 'check-config -c FILE                          validate a config and the files it names';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('check-config', argv, { config: { type: 'string', short: 'c' } });
  const loaded = loadConfig(required('check-config', 'config', values.config));
  loadTlsMaterial(loaded.config.tls);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  process.stdout.write(`${loaded.file}: ok (role ${loaded.config.role}, ${loaded.config.peers.length} peers)\n`);
  return 0;
}
