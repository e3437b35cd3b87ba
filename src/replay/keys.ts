/**
 * Signature keys from files, one key per file:
 * - `whsec_<base64>`: an HMAC-SHA256 secret (v1), at least 32 bytes of key material;
 * - `whpk_<base64>` (the raw 32-byte key) or a PEM `PUBLIC KEY`: an Ed25519 public key (v1a);
 * - for signing only, `whsk_<base64>` (the 32-byte seed, or seed + public key as libsodium
 *   writes it) or a PEM `PRIVATE KEY`: an Ed25519 private key.
 * Ed25519 is the only asymmetric algorithm of the scheme; any other key type is refused.
 * Read-only: no side effects beyond reading the files.
 */
import { createHash, createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { ConfigProblem } from '../config/errors.ts';
import { checkReadableFile, checkSecretFile, isMissing } from '../config/files.ts';
import type { AuthorisedPeer } from '../config/schema.ts';
import type { HeldFile, LoadPhase } from '../reload/source.ts';
import { secretWeakness } from '../crypto/secret-strength.ts';
import { decodeCanonicalBase64, type SignKey, type VerifyKey } from './signature.ts';

/** Least HMAC key material, in bytes (the hash's output size; RFC 2104 section 3). */
export const MIN_HMAC_KEY_BYTES = 32;
/** Largest key file read; a key is a few hundred bytes, anything bigger is a wrong path. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

// Fixed DER headers around a raw Ed25519 key (RFC 8410): SubjectPublicKeyInfo and PKCS #8.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A key file's content is not a usable key; the message says why and how to fix it. */
export class KeyFormatError extends Error {
  override name = 'KeyFormatError';
}

/** Parses the text of a verification key (what `peers[].signing_keys` files hold). */
export function parseVerifyKey(text: string): VerifyKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('whsec_')) {
    const secret = decodeKeyMaterial(trimmed.slice(6), 'whsec_');
    checkHmacKeyMaterial(secret);
    return { version: 'v1', key: createSecretKey(secret), id: keyId(secret) };
  }
  if (trimmed.startsWith('whpk_')) {
    const raw = decodeKeyMaterial(trimmed.slice(5), 'whpk_');
    if (raw.length !== 32) throw new KeyFormatError(`a whpk_ key is a raw Ed25519 public key of 32 bytes, this one has ${raw.length}`);
    return { version: 'v1a', key: createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' }), id: keyId(raw) };
  }
  if (trimmed.startsWith('whsk_') || /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new KeyFormatError('this is a private key; the guard needs only the public key (whpk_, or PEM from `openssl pkey -pubout`)');
  }
  if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    let key: KeyObject;
    try {
      key = createPublicKey(trimmed);
    } catch {
      throw new KeyFormatError('not a readable PEM public key');
    }
    requireEd25519(key);
    const raw = key.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
    return { version: 'v1a', key, id: keyId(raw) };
  }
  throw new KeyFormatError('not a signature key; write whsec_<base64> (HMAC secret), whpk_<base64> or a PEM PUBLIC KEY (Ed25519)');
}

/** Parses the text of a signing key (for `replguard sign` and the signer role). */
export function parseSignKey(text: string): SignKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('whsec_')) {
    const secret = decodeKeyMaterial(trimmed.slice(6), 'whsec_');
    checkHmacKeyMaterial(secret);
    return { version: 'v1', key: createSecretKey(secret) };
  }
  if (trimmed.startsWith('whsk_')) {
    const raw = decodeKeyMaterial(trimmed.slice(5), 'whsk_');
    if (raw.length !== 32 && raw.length !== 64) throw new KeyFormatError(`a whsk_ key is an Ed25519 seed of 32 bytes (or seed + public key, 64), this one has ${raw.length}`);
    const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    if (raw.length === 64) {
      const pub = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
      if (!pub.equals(raw.subarray(32))) throw new KeyFormatError('the whsk_ key\'s second half is not the public key of its seed');
    }
    return { version: 'v1a', key };
  }
  if (/^-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(trimmed)) {
    let key: KeyObject;
    try {
      key = createPrivateKey(trimmed);
    } catch {
      throw new KeyFormatError('not a readable (unencrypted) PEM private key');
    }
    requireEd25519(key);
    return { version: 'v1a', key };
  }
  throw new KeyFormatError('not a signing key; write whsec_<base64> (HMAC secret), whsk_<base64> or a PEM PRIVATE KEY (Ed25519)');
}

/** The public key of an Ed25519 signing key as `whpk_<base64>` (for handing to the guard). */
export function publicKeyText(key: SignKey): string {
  if (key.version !== 'v1a') throw new KeyFormatError('an HMAC secret has no public key');
  const raw = createPublicKey(key.key).export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
  return `whpk_${raw.toString('base64')}`;
}

/**
 * Reads and checks one key file. An HMAC secret must not be readable by others
 * (checkSecretFile); a public key may be, it is not a secret.
 */
export function readVerifyKeyFile(file: string, keyPath: string): { key: VerifyKey } | { problem: ConfigProblem } {
  const text = readKeyFile(file, keyPath);
  if (typeof text !== 'string') return { problem: text };
  let key: VerifyKey;
  try {
    key = parseVerifyKey(text);
  } catch (err) {
    if (err instanceof KeyFormatError) return { problem: { path: keyPath, message: `${file}: ${err.message}` } };
    throw err;
  }
  if (key.version === 'v1') {
    const p = checkSecretFile(file, keyPath);
    if (p) return { problem: p };
  }
  return { key };
}

/** Reads and checks a signing key file (a secret whatever its kind). */
export function readSignKeyFile(file: string, keyPath: string): { key: SignKey } | { problem: ConfigProblem } {
  const text = readKeyFile(file, keyPath);
  if (typeof text !== 'string') return { problem: text };
  const p = checkSecretFile(file, keyPath);
  if (p) return { problem: p };
  try {
    return { key: parseSignKey(text) };
  } catch (err) {
    if (err instanceof KeyFormatError) return { problem: { path: keyPath, message: `${file}: ${err.message}` } };
    throw err;
  }
}

/**
 * Every peer's verification keys, or every problem with them: unreadable or malformed files,
 * and one key listed for two POPs (a signature must name one POP) or twice for the same one.
 * A missing file is a problem at `'start'`; at `'reload'` it is a removal (no key from it).
 */
export function readPeerSigningKeys(peers: readonly AuthorisedPeer[], phase: LoadPhase = 'start'): { keys: Map<string, VerifyKey[]>; problems: ConfigProblem[]; inventory: HeldFile[] } {
  const keys = new Map<string, VerifyKey[]>();
  const problems: ConfigProblem[] = [];
  const inventory: HeldFile[] = [];
  const owners = new Map<string, string>();
  peers.forEach((peer, i) => {
    const own: VerifyKey[] = [];
    peer.signing_keys.forEach((file, j) => {
      const keyPath = `peers[${i}].signing_keys[${j}]`;
      if (phase === 'reload' && isMissing(file)) return;
      const result = readVerifyKeyFile(file, keyPath);
      if ('problem' in result) {
        problems.push(result.problem);
        return;
      }
      const owner = owners.get(result.key.id);
      if (owner !== undefined) {
        problems.push({ path: keyPath, message: `${file} holds the same key as ${owner}; each key belongs to one POP, listed once` });
        return;
      }
      owners.set(result.key.id, keyPath);
      own.push(result.key);
      inventory.push({ key: keyPath, file, pop: peer.id });
    });
    // A peer from the control plane's registry: its Ed25519 public keys are inline (verified
    // with the registry's signature, checked against the whpk_ form by its schema).
    peer.signature_keys?.forEach((text, j) => {
      const keyPath = `control_plane registry: ${peer.id}.signature_keys[${j}]`;
      let key: VerifyKey;
      try {
        key = parseVerifyKey(text);
      } catch (err) {
        problems.push({ path: keyPath, message: err instanceof KeyFormatError ? err.message : 'not a usable Ed25519 public key' });
        return;
      }
      const owner = owners.get(key.id);
      if (owner !== undefined) {
        problems.push({ path: keyPath, message: `the same key as ${owner}; each key belongs to one POP, listed once` });
        return;
      }
      owners.set(key.id, keyPath);
      own.push(key);
    });
    keys.set(peer.id, own);
  });
  return { keys, problems, inventory };
}

function readKeyFile(file: string, keyPath: string): string | ConfigProblem {
  const unreadable = checkReadableFile(file, keyPath);
  if (unreadable) return unreadable;
  if (statSync(file).size > MAX_KEY_FILE_BYTES) return { path: keyPath, message: `${file} is larger than ${MAX_KEY_FILE_BYTES} bytes; it is not a key file` };
  return readFileSync(file, 'utf8');
}

function decodeKeyMaterial(text: string, prefix: string): Buffer {
  const bytes = decodeCanonicalBase64(text);
  if (!bytes) throw new KeyFormatError(`the part after ${prefix} is not standard padded base64`);
  return bytes;
}

const HMAC_FIX = 'make one with: echo "whsec_$(openssl rand -base64 32)"';

/**
 * At least 32 bytes of key material, and at least 128 bits by the conservative estimate of
 * crypto/secret-strength.ts. Material that is printable text (base64 of a passphrase looks
 * random; its content does not) is judged as that text; other material in hex, where a pattern
 * of bytes is a pattern of characters whatever its period (in base64 only a period of a multiple
 * of 3 bytes shows).
 */
function checkHmacKeyMaterial(secret: Buffer): void {
  if (secret.length < MIN_HMAC_KEY_BYTES) {
    throw new KeyFormatError(`an HMAC secret needs at least ${MIN_HMAC_KEY_BYTES} bytes of key material, this one has ${secret.length}; ${HMAC_FIX}`);
  }
  const judged = isPrintableText(secret) ? secret.toString('latin1') : secret.toString('hex');
  const weakness = secretWeakness(judged, HMAC_FIX);
  if (weakness) throw new KeyFormatError(`weak HMAC secret: ${weakness}`);
}

function isPrintableText(bytes: Buffer): boolean {
  return bytes.every((b) => (b >= 0x20 && b <= 0x7e) || b === 0x09);
}

function requireEd25519(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyFormatError(`only Ed25519 keys sign requests (v1a); this is a ${key.asymmetricKeyType ?? 'unknown'} key`);
  }
}

function keyId(material: Buffer): string {
  return createHash('sha256').update(material).digest('hex').slice(0, 16);
}
