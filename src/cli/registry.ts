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
import { type ArgValue, parseCommandArgs } from './args.ts';
import { writeSecretFile } from './secret-file.ts';

const problem = (where: string, message: string) => new ConfigError([{ path: where ? `replguard registry ${where}` : 'replguard registry', message }]);

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

type Values = Readonly<Record<string, ArgValue>>;

function required(sub: string, values: Values, flag: string): string {
  const value = values[flag];
  if (typeof value !== 'string' || value === '') throw problem(sub, `--${flag} is required (replguard registry --help)`);
  return value;
}

const optional = (values: Values, flag: string) => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined);
const list = (values: Values, flag: string) => (Array.isArray(values[flag]) ? (values[flag] as string[]) : undefined);

async function keygen(values: Values): Promise<number> {
  const prefix = required('keygen', values, 'out');
  const alg = optional(values, 'alg') ?? 'EdDSA';
  if (!(REGISTRY_ALGORITHMS as readonly string[]).includes(alg)) throw problem('keygen --alg', `${alg} is not EdDSA or ES256`);
  const [keyFile, pubFile] = [`${prefix}.key`, `${prefix}.pub`];
  for (const file of [keyFile, pubFile]) {
    if (existsSync(file) && !values.force) throw problem('keygen --out', `${file} exists; pass --force to replace it`);
  }
  const pair = generateRegistryKeyPair(alg as RegistryAlgorithm);
  writeSecretFile(keyFile, pair.privatePem);
  writePublicFile(pubFile, pair.publicPem);
  process.stdout.write(`${keyFile}: HQ signing key (keep it at HQ, mode 0600)\n${pubFile}: its public key, for control_plane.keys\nkid ${pair.kid} (${alg})\n`);
  return 0;
}

async function sign(values: Values): Promise<number> {
  const keyFile = required('sign', values, 'key');
  const input = required('sign', values, 'in');
  const out = required('sign', values, 'out');
  let key: RegistrySigningKey;
  try {
    key = parseRegistrySigningKey(readText(keyFile, 'sign --key'), optional(values, 'kid'));
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

async function verify(values: Values): Promise<number> {
  const file = required('verify', values, 'in');
  try {
    const registry = await verifyFile('verify', list(values, 'keys') ?? [], file, optional(values, 'previous'));
    process.stdout.write(`${file}: valid, serial ${registry.payload.serial}, ${registry.payload.pops.length} POPs, kid ${registry.kid} (${registry.alg}), expires ${new Date(registry.payload.exp * 1000).toISOString()}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`${file}: refused, ${err.code}: ${err.message}\n`);
    return 1;
  }
}

async function show(values: Values): Promise<number> {
  const file = required('show', values, 'in');
  const keys = list(values, 'keys');
  if (keys !== undefined) {
    try {
      const registry = await verifyFile('show', keys, file);
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

/** Each subcommand, and the options of the usage table's `registry` entry it takes. */
const SUBCOMMANDS: Record<string, { run: (values: Values) => Promise<number>; options: readonly string[] }> = {
  keygen: { run: keygen, options: ['out', 'alg', 'force'] },
  sign: { run: sign, options: ['key', 'in', 'out', 'kid'] },
  verify: { run: verify, options: ['keys', 'in', 'previous'] },
  show: { run: show, options: ['keys', 'in'] },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positional } = parseCommandArgs('registry', argv);
  const sub = positional !== undefined ? SUBCOMMANDS[positional] : undefined;
  if (!sub) throw problem('', `"${positional}" is not a subcommand; use ${Object.keys(SUBCOMMANDS).join(', ')} (replguard registry --help)`);
  // One option table serves the four subcommands: one that is given but belongs to another is a
  // mistake worth naming (--previous to show would otherwise be silently ignored).
  const foreign = Object.keys(values).filter((name) => !sub.options.includes(name) && values[name] !== undefined && values[name] !== false && !(name === 'alg' && values[name] === 'EdDSA'));
  if (foreign.length > 0) throw problem(positional!, `${foreign.map((n) => `--${n}`).join(', ')} ${foreign.length > 1 ? 'do' : 'does'} not apply to ${positional}; it takes ${sub.options.map((n) => `--${n}`).join(', ')}`);
  return sub.run(values);
}
