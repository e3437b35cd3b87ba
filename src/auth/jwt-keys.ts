/**
 * JWT verification keys (auth/jwt.ts): PEM or JWK files and folders, each key checked for its
 * declared algorithm (no private or symmetric material, RSA size and ROCA, curves), bound to one
 * POP or one issuer; and the revoked token ids. A missing key file or folder, or an empty
 * folder, is a configuration error at start-up and a removal at a reload; a missing revocation
 * list at a reload is refused (deleting it must not un-revoke anything).
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkTrustedPath, isMissing } from '../config/files.ts';
import type { JwtAlgorithm, JwtConfig } from '../config/schema.ts';
import type { HeldFile, Loaded, LoadPhase } from '../reload/source.ts';
import { hasRocaFingerprint } from './rsa-roca.ts';
import { parseJsonObject } from './strict-json.ts';
import { ALLOWED_ALGS } from './jwt-header.ts';

/** A verification key in force: checked at load, bound to one POP or one issuer. */
export interface VerificationKey {
  /** The JWK `kid` when the file gave one, else the RFC 7638 thumbprint. Unique across all keys. */
  readonly kid: string;
  readonly alg: JwtAlgorithm;
  readonly key: KeyObject;
  readonly pop?: string;
  readonly issuer?: string;
  /** RFC 7638 thumbprint (base64url SHA-256). */
  readonly thumbprint: string;
  /** The file it came from, for the operational log. */
  readonly file: string;
}

export interface KeySet {
  readonly keys: readonly VerificationKey[];
  readonly byKid: ReadonlyMap<string, VerificationKey>;
  /** Per `public_keys` entry, whether its path was a folder (undefined: removed). */
  readonly folders: ReadonlyArray<boolean | undefined>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;
const CURVE_FOR_ALG: Partial<Record<JwtAlgorithm, { jwk: string; node: string }>> = {
  ES256: { jwk: 'P-256', node: 'prime256v1' },
  ES384: { jwk: 'P-384', node: 'secp384r1' },
  ES512: { jwk: 'P-521', node: 'secp521r1' },
};

function ktyForAlg(alg: JwtAlgorithm): 'RSA' | 'EC' | 'OKP' {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return 'RSA';
  if (alg.startsWith('ES')) return 'EC';
  return 'OKP';
}

/**
 * Checks one public JWK against the algorithm it is declared for and returns it as a KeyObject.
 * Refuses: private or symmetric key material, `use` other than sig, `key_ops` without verify,
 * a JWK `alg` other than the declared one, a key type or curve that does not fit the algorithm,
 * an invalid point, RSA under 2048 bits, an exponent other than 65537, a ROCA modulus, and a
 * `x5u` reference (never fetched). Throws an Error whose message says why.
 */
export function checkVerificationJwk(jwk: Record<string, unknown>, alg: JwtAlgorithm): KeyObject {
  if (!ALLOWED_ALGS.has(alg)) throw new Error(`algorithm ${String(alg)} is not accepted`);
  if (jwk.kty === 'oct') throw new Error('a symmetric (oct) key: HMAC algorithms are not accepted; use an asymmetric key');
  if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined)) throw new Error('it contains private key material; configure the public key only');
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`its "use" is ${JSON.stringify(jwk.use)}, not "sig"`);
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) throw new Error('its "key_ops" does not include "verify"');
  if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`it declares alg ${JSON.stringify(jwk.alg)}, but the entry says ${alg}`);
  if (jwk.x5u !== undefined) throw new Error('it has an "x5u" URL; keys are never fetched, give the key itself');
  const kty = ktyForAlg(alg);
  if (jwk.kty !== kty) throw new Error(`a ${String(jwk.kty)} key cannot verify ${alg} (needs ${kty})`);

  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new Error(`not a valid ${kty} public key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (kty === 'RSA') {
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`an ${String(key.asymmetricKeyType)} key; use a plain RSA (rsaEncryption) key`);
    if ((details.modulusLength ?? 0) < 2048) throw new Error(`RSA key of ${details.modulusLength} bits; at least 2048 are required`);
    if (details.publicExponent !== 65537n) throw new Error(`RSA public exponent ${String(details.publicExponent)}; only 65537 is accepted`);
    const n = BigInt(`0x${Buffer.from(String(jwk.n), 'base64url').toString('hex')}`);
    if (hasRocaFingerprint(n)) throw new Error('RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered; replace the key');
  } else if (kty === 'EC') {
    const curve = CURVE_FOR_ALG[alg]!;
    if (jwk.crv !== curve.jwk || details.namedCurve !== curve.node) throw new Error(`curve ${String(jwk.crv)} cannot verify ${alg} (needs ${curve.jwk})`);
  } else if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`an ${String(key.asymmetricKeyType)} key cannot verify EdDSA here (needs Ed25519)`);
  }
  return key;
}

/**
 * RFC 7638 JWK thumbprint: base64url SHA-256 of the required members in lexicographic order.
 * Hand-written because jose's calculateJwkThumbprint is async (WebCrypto) and key loading is
 * synchronous, so that a reload swaps in one step; a unit test checks both agree.
 */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * The keys of one file: PEM `PUBLIC KEY` blocks, or a JWK / JWK Set (JSON). Each is checked
 * against `alg`; the first problem throws.
 */
export function parseKeyFile(text: string, alg: JwtAlgorithm): Array<{ kid: string; key: KeyObject; thumbprint: string }> {
  const out: Array<{ kid: string; key: KeyObject; thumbprint: string }> = [];
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const parsed = parseJsonObject(Buffer.from(trimmed));
    if (!parsed.ok) throw new Error(`not a JWK or JWK Set (${parsed.problem})`);
    const list = Array.isArray(parsed.value.keys) ? parsed.value.keys : [parsed.value];
    if (list.length === 0) throw new Error('the JWK Set has no keys');
    list.forEach((jwk, i) => {
      if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error(`keys[${i}] is not a JWK object`);
      const rec = jwk as Record<string, unknown>;
      let key: KeyObject;
      try {
        key = checkVerificationJwk(rec, alg);
      } catch (err) {
        throw new Error(`keys[${i}]: ${(err as Error).message}`);
      }
      if (rec.kid !== undefined && (typeof rec.kid !== 'string' || rec.kid.length === 0 || rec.kid.length > 256)) throw new Error(`keys[${i}]: "kid" is not a string of 1 to 256 characters`);
      const thumbprint = jwkThumbprint(key);
      out.push({ kid: (rec.kid as string | undefined) ?? thumbprint, key, thumbprint });
    });
    return out;
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new Error('no PEM "PUBLIC KEY" block and not a JWK (JSON)');
  blocks.forEach((block, i) => {
    if (block[1] !== 'PUBLIC KEY') {
      throw new Error(block[1]!.includes('PRIVATE') ? `PEM block ${i + 1} is a private key; configure the public key only (openssl pkey -pubout)` : `PEM block ${i + 1} is a ${block[1]}; only "PUBLIC KEY" (SPKI) blocks are accepted`);
    }
    let spki: KeyObject;
    try {
      spki = createPublicKey(block[0]);
    } catch (err) {
      throw new Error(`PEM block ${i + 1} is not a public key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (spki.asymmetricKeyType === 'rsa-pss') throw new Error(`PEM block ${i + 1} is an RSASSA-PSS-only key; use a plain RSA (rsaEncryption) key, which PS* accepts`);
    let key: KeyObject;
    try {
      key = checkVerificationJwk(spki.export({ format: 'jwk' }) as Record<string, unknown>, alg);
    } catch (err) {
      throw new Error(`PEM block ${i + 1}: ${(err as Error).message}`);
    }
    const thumbprint = jwkThumbprint(key);
    out.push({ kid: thumbprint, key, thumbprint });
  });
  return out;
}

/**
 * The files of a key entry: the file itself, or the regular files of a folder (dot-names
 * skipped, which also skips a Kubernetes volume's `..data`). At a reload, names that are gone
 * (a dangling link the kubelet has not removed yet) are left out.
 */
function keyFiles(path: string, phase: LoadPhase): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .map((name) => join(path, name))
    .filter((file) => !(phase === 'reload' && isMissing(file)) && statSync(file).isFile());
}

export interface KeySetOptions {
  /** `'reload'`: a missing file or folder, or an empty folder, is a removal, not a problem. */
  readonly phase?: LoadPhase;
  /**
   * What each entry was at the first load (KeySet.folders): an entry that was a file and is now
   * a folder (or the other way round) is refused as unusable, never read as something else.
   */
  readonly folders?: ReadonlyArray<boolean | undefined>;
}

/** Reads and checks every configured key, all or nothing. Throws a ConfigError with every problem. */
export function loadKeySet(jwt: Pick<JwtConfig, 'public_keys' | 'issuer'>, peerIds: ReadonlySet<string>, options: KeySetOptions = {}): Loaded<KeySet> {
  const phase = options.phase ?? 'start';
  const problems: ConfigProblem[] = [];
  const keys: VerificationKey[] = [];
  const byKid = new Map<string, VerificationKey>();
  const inventory: HeldFile[] = [];
  const folders: Array<boolean | undefined> = [];
  jwt.public_keys.forEach((entry, i) => {
    const at = `auth.jwt.public_keys[${i}]`;
    if (entry.pop !== undefined && !peerIds.has(entry.pop)) problems.push({ path: `${at}.pop`, message: `"${entry.pop}" is not a configured peer id` });
    if (entry.issuer !== undefined && !jwt.issuer.includes(entry.issuer)) problems.push({ path: `${at}.issuer`, message: `"${entry.issuer}" is not listed in auth.jwt.issuer` });
    if (phase === 'reload' && isMissing(entry.path)) {
      folders.push(undefined);
      return; // removed: every key of this entry goes out of force
    }
    let files: string[];
    let folder: boolean;
    try {
      folder = statSync(entry.path).isDirectory();
      files = keyFiles(entry.path, phase);
    } catch (err) {
      problems.push({ path: `${at}.path`, message: `${entry.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return;
    }
    folders.push(folder);
    const was = options.folders?.[i];
    if (was !== undefined && was !== folder) {
      problems.push({ path: `${at}.path`, message: `${entry.path} was a ${was ? 'folder' : 'file'} and is now a ${folder ? 'folder' : 'file'}; put back what the config means, or change the config` });
      return;
    }
    if (folder) {
      const unsafe = checkTrustedPath(entry.path, `${at}.path`, 'folder');
      if (unsafe) {
        problems.push(unsafe);
        return;
      }
    }
    if (files.length === 0 && phase === 'start') problems.push({ path: `${at}.path`, message: `${entry.path} holds no key files` });
    for (const file of files) {
      const unreadable = checkReadableFile(file, `${at}.path`);
      if (unreadable) {
        problems.push(unreadable);
        continue;
      }
      try {
        const before = keys.length;
        for (const parsed of parseKeyFile(readFileSync(file, 'utf8'), entry.alg)) {
          const key: VerificationKey = { ...parsed, alg: entry.alg, file, ...(entry.pop !== undefined ? { pop: entry.pop } : { issuer: entry.issuer! }) };
          const other = byKid.get(key.kid);
          if (other) {
            problems.push({ path: `${at}.path`, message: `${file}: key id ${key.kid} is also in ${other.file}; a key (and a kid) must belong to one POP or issuer` });
            continue;
          }
          byKid.set(key.kid, key);
          keys.push(key);
        }
        if (keys.length > before) inventory.push({ key: `${at}.path`, file, ...(entry.pop !== undefined ? { pop: entry.pop } : {}) });
      } catch (err) {
        problems.push({ path: `${at}.path`, message: `${file}: ${(err as Error).message}` });
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify(keys.map((k) => [k.kid, k.alg, k.pop ?? null, k.issuer ?? null, k.thumbprint])))
    .digest('hex');
  return { value: { keys, byKid, folders }, fingerprint, inventory };
}

/**
 * The revoked token ids: one per line, blank lines and `#` comments ignored. Missing is refused
 * at a reload too, with the ids in force kept: a deleted list must not un-revoke them.
 */
export function loadRevokedIds(file: string | undefined, phase: LoadPhase = 'start'): Loaded<ReadonlySet<string>> {
  if (file === undefined) return { value: new Set(), fingerprint: '' };
  if (phase === 'reload' && isMissing(file)) {
    throw new ConfigError([{ path: 'auth.jwt.revoked_ids_file', message: `${file} does not exist: the ids revoked in force stay revoked (deleting a revocation list never un-revokes); to clear the list, empty the file` }]);
  }
  const unreadable = checkReadableFile(file, 'auth.jwt.revoked_ids_file');
  if (unreadable) throw new ConfigError([unreadable]);
  const text = readFileSync(file, 'utf8');
  const ids = new Set<string>();
  const problems: ConfigProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (line.length > 256 || /[\x00-\x1f\x7f]/.test(line)) {
      problems.push({ path: 'auth.jwt.revoked_ids_file', message: `${file} line ${i + 1}: not a token id (1 to 256 printable characters)` });
      return;
    }
    ids.add(line);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return { value: ids, fingerprint: createHash('sha256').update([...ids].sort().join('\n')).digest('hex') };
}
