/**
 * `replguard migrate-config FILE [-o OUT] [--force]`: the security review's replication.yaml as a
 * replguard config of its role (config/legacy.ts has the mapping). The result names what has no
 * equivalent, in its header and on stderr; it is not checked here (its files may not exist yet):
 * run check-config on it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import YAML from 'yaml';
import { ConfigError } from '../config/errors.ts';
import { migrateLegacyConfig } from '../config/legacy.ts';
import { parseYaml } from '../config/load.ts';
import { flagArg, parseCommandArgs, stringArg } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('migrate-config', argv);
  const file = args.positional!;
  const out = stringArg(args, 'out');
  const at = 'replguard migrate-config';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: at, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const { doc } = parseYaml(text, file);
  let migration: ReturnType<typeof migrateLegacyConfig>;
  try {
    migration = migrateLegacyConfig(doc.toJS({ maxAliasCount: 0 }));
  } catch (err) {
    throw new ConfigError([{ path: file, message: `not a config of the review's replication.yaml format: ${(err as Error).message}` }]);
  }
  const what = migration.role === 'primary' ? 'the signer (role: primary)' : 'the guard (role: backup)';
  const header = [
    '# yaml-language-server: $schema=./replguard.schema.json',
    `# ${what}, migrated by replguard migrate-config from ${file}.`,
    '# Review it, then: replguard check-config -c THIS_FILE',
    ...(migration.notes.length > 0 ? ['#', '# What did not carry over as it was:', ...migration.notes.map((n) => `# - ${n}`)] : []),
    '',
  ].join('\n');
  const yaml = `${header}${YAML.stringify(migration.config, { lineWidth: 0 })}`;
  if (out === undefined) process.stdout.write(yaml);
  else {
    if (existsSync(out) && !flagArg(args, 'force')) throw new ConfigError([{ path: `${at} --out`, message: `${out} exists; pass --force to replace it` }]);
    // Only its owner may change a config (config/files.ts refuses one that others could change).
    writeFileSync(out, yaml, { mode: 0o640 });
    process.stdout.write(`${out}: ${what} config written; review it and run replguard check-config -c ${out}\n`);
  }
  for (const note of migration.notes) process.stderr.write(`note: ${note}\n`);
  return 0;
}
