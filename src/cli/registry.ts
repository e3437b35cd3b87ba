/**
 * `replguard registry keygen | sign | verify | show`: the HQ side of the signed POP registry
 * (docs/control-plane.md), with the format and verification of registry/.
 *
 *   registry keygen --out PREFIX [--alg EdDSA|ES256] [--force]   PREFIX.key (0600) and PREFIX.pub
 *   registry sign -k KEY -i PAYLOAD -o OUT [--kid KID]           PAYLOAD: YAML or JSON
 *   registry verify --keys PUB [--keys PUB ...] -i JWS [--previous JWS]
 *   registry show -i JWS [--keys PUB ...]                        the payload; verified when keys are given
 *
 * verify exits 0 when the document is accepted, 1 with the refusal code when it is not, 2 for a
 * usage or file problem.
 */
import { existsSync, readFileSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import YAML from 'yaml';
import { ConfigError } from '../config/errors.ts';
import { REGISTRY_ALGORITHMS, type Registry, type RegistryAlgorithm, type RegistryPayloadInput } from '../registry/document.ts';
import { generateRegistryKeyPair, loadRegistryKeys, parseRegistrySigningKey, type RegistrySigningKey } from '../registry/keys.ts';
import { RegistryError, signRegistry, verifyRegistry } from '../registry/verify.ts';
import { parseCommandArgs, required } from './args.ts';
import { writeSecretFile } from './secret-file.ts';

export const usage = 'registry keygen|sign|verify|show ...               HQ: make a key, sign, verify or show a POP registry (docs/control-plane.md)';

const problem = (where: string, message: string) => new ConfigError([{ path: `replguard registry ${where}`, message }]);

function readText(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw problem(where, `${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** A public file (the registry, a public key), replaced in one step so a polling POP never reads half of it. */
function writePublicFile(file: string, content: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, content, { mode: 0o644, flag: 'wx' });
  chmodSync(tmp, 0o644);
  renameSync(tmp, file);
}

async function keygen(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('registry keygen', argv, { out: { type: 'string', short: 'o' }, alg: { type: 'string', default: 'EdDSA' }, force: { type: 'boolean', default: false } });
  const prefix = required('registry keygen', 'out', values.out);
  if (!(REGISTRY_ALGORITHMS as readonly string[]).includes(values.alg)) throw problem('keygen --alg', `${values.alg} is not EdDSA or ES256`);
  const [keyFile, pubFile] = [`${prefix}.key`, `${prefix}.pub`];
  for (const file of [keyFile, pubFile]) {
    if (existsSync(file) && !values.force) throw problem('keygen --out', `${file} exists; pass --force to replace it`);
  }
  const pair = generateRegistryKeyPair(values.alg as RegistryAlgorithm);
  writeSecretFile(keyFile, pair.privatePem);
  writePublicFile(pubFile, pair.publicPem);
  process.stdout.write(`${keyFile}: HQ signing key (keep it at HQ, mode 0600)\n${pubFile}: its public key, for control_plane.keys\nkid ${pair.kid} (${values.alg})\n`);
  return 0;
}

async function sign(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('registry sign', argv, { key: { type: 'string', short: 'k' }, in: { type: 'string', short: 'i' }, out: { type: 'string', short: 'o' }, kid: { type: 'string' } });
  const keyFile = required('registry sign', 'key', values.key);
  const input = required('registry sign', 'in', values.in);
  const out = required('registry sign', 'out', values.out);
  let key: RegistrySigningKey;
  try {
    key = parseRegistrySigningKey(readText(keyFile, 'sign --key'), values.kid);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw problem('sign --key', `${keyFile}: ${(err as Error).message}`);
  }
  let payload: RegistryPayloadInput;
  try {
    payload = YAML.parse(readText(input, 'sign --in')) as RegistryPayloadInput;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw problem('sign --in', `${input} is not YAML or JSON: ${(err as Error).message}`);
  }
  let jws: string;
  try {
    jws = await signRegistry(payload, key);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    throw problem('sign --in', `${input}: ${err.message}`);
  }
  writePublicFile(out, `${jws}\n`);
  process.stdout.write(`${out}: registry serial ${payload.serial}, ${payload.pops.length} POPs, signed by kid ${key.kid} (${key.alg})\n`);
  return 0;
}

/** The unverified `iat` of a document, in ms (0 when unreadable: verification then refuses it). */
function issuedAtMs(text: string): number {
  try {
    const iat = (JSON.parse(Buffer.from(text.trim().split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat?: unknown }).iat;
    return typeof iat === 'number' ? iat * 1000 : 0;
  } catch {
    return 0;
  }
}

async function verifyFile(where: string, keyFiles: readonly string[], file: string, previous?: string): Promise<Registry> {
  const keys = loadRegistryKeys(keyFiles, `registry ${where} --keys`);
  const now = Date.now;
  // The previous document is the one in force: verified as of its own issue time (it may have
  // expired since), so that a new one is checked against its serial (no rollback, no reuse).
  let inForce: Registry | undefined;
  if (previous !== undefined) {
    const text = readText(previous, `${where} --previous`);
    inForce = await verifyRegistry(text, keys, { now: () => issuedAtMs(text) });
  }
  return verifyRegistry(readText(file, `${where} --in`), keys, { now, ...(inForce ? { inForce } : {}) });
}

async function verify(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('registry verify', argv, { keys: { type: 'string', multiple: true }, in: { type: 'string', short: 'i' }, previous: { type: 'string' } });
  const file = required('registry verify', 'in', values.in);
  try {
    const registry = await verifyFile('verify', values.keys ?? [], file, values.previous);
    process.stdout.write(`${file}: valid, serial ${registry.payload.serial}, ${registry.payload.pops.length} POPs, kid ${registry.kid} (${registry.alg}), expires ${new Date(registry.payload.exp * 1000).toISOString()}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`${file}: refused, ${err.code}: ${err.message}\n`);
    return 1;
  }
}

async function show(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('registry show', argv, { keys: { type: 'string', multiple: true }, in: { type: 'string', short: 'i' } });
  const file = required('registry show', 'in', values.in);
  if (values.keys !== undefined) {
    try {
      const registry = await verifyFile('show', values.keys, file);
      process.stdout.write(`${JSON.stringify({ verified: true, kid: registry.kid, alg: registry.alg, ...registry.payload }, null, 2)}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      process.stderr.write(`${file}: refused, ${err.code}: ${err.message}\n`);
      return 1;
    }
  }
  // Without keys: decoded only, and said so; nothing here is trusted.
  const text = readText(file, 'show --in').trim();
  let header: unknown;
  let payload: unknown;
  try {
    header = decodeProtectedHeader(text);
    payload = JSON.parse(Buffer.from(text.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    process.stderr.write(`${file}: not a readable registry (compact JWS with a JSON payload)\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify({ verified: false, header, payload }, null, 2)}\n`);
  process.stderr.write('not verified: pass --keys to check the signature\n');
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { keygen, sign, verify, show };

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const sub = name !== undefined ? SUBCOMMANDS[name] : undefined;
  if (!sub) throw problem('', `name a subcommand: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  return sub(rest);
}
