/** `replguard dev-pki --out DIR [--pops a,b]`: a demo CA, a localhost server certificate and one client certificate per POP. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.ts';
import { isPopId, POP_ID_RULE } from '../config/pop-id.ts';
import { parseCommandArgs, stringArg } from './args.ts';

/**
 * node-forge (about 11 MiB resident) is loaded here, when certificates are made, never by a
 * guard or signer that only serves: `main.ts` imports every command module at start.
 */
export async function writeDevPki(out: string, pops: readonly string[]): Promise<string[]> {
  const { DevCa } = await import('../tls/dev-ca.ts');
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const ca = DevCa.create();
  const server = ca.issueServer(['localhost']);
  const files: Array<[string, string, number]> = [
    ['ca.crt', ca.certPem, 0o644],
    ['ca.key', ca.keyPem, 0o600],
    ['server.crt', server.certPem, 0o644],
    ['server.key', server.keyPem, 0o600],
  ];
  for (const pop of pops) {
    const client = ca.issueClient(pop);
    files.push([`${pop}.crt`, client.certPem, 0o644], [`${pop}.key`, client.keyPem, 0o600]);
  }
  for (const [name, content, mode] of files) writeFileSync(join(out, name), content, { mode });
  return files.map(([name]) => join(out, name));
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('dev-pki', argv);
  const out = stringArg(args, 'out')!;
  const pops = (stringArg(args, 'pops') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const bad = pops.filter((p) => !isPopId(p));
  if (bad.length > 0) throw new ConfigError([{ path: 'replguard dev-pki --pops', message: `not a POP id: ${bad.join(', ')} (${POP_ID_RULE})` }]);
  for (const file of await writeDevPki(out, pops)) process.stdout.write(`${file}\n`);
  return 0;
}
