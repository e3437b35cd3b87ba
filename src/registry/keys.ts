/**
 * The HQ public keys a registry is verified with (`control_plane.keys`): PEM `PUBLIC KEY` or
 * JWK files, Ed25519 (EdDSA) or P-256 (ES256) only; the key type fixes the algorithm, so a key
 * can never verify under another one. Several at once, so HQ can rotate its signing key: each is
 * named by its JWK `kid` or, without one, its RFC 7638 thumbprint, which the JWS header's `kid`
 * must name. Private key material is refused.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { checkReadableFile } from '../config/files.ts';
import type { RegistryAlgorithm } from './document.ts';

export interface RegistryKey {
  readonly kid: string;
  readonly alg: RegistryAlgorithm;
  readonly key: KeyObject;
  /** The file it came from, for the operator. */
  readonly file: string;
}

export interface RegistryKeySet {
  readonly byKid: ReadonlyMap<string, RegistryKey>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;
const KID = /^[\x21-\x7e]{1,128}$/;

/** The algorithm a key verifies, from its type; anything else is refused with the reason. */
export function registryAlgorithmOf(key: KeyObject): RegistryAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  const what = key.asymmetricKeyType === 'ec' ? `EC ${String(key.asymmetricKeyDetails?.namedCurve)}` : String(key.asymmetricKeyType ?? key.type);
  throw new Error(`an ${what} key; a registry key is Ed25519 (EdDSA) or P-256 (ES256)`);
}

/** RFC 7638 thumbprint (base64url SHA-256 of the required members in lexicographic order). */
export function registryKeyThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** One key file's text: a PEM `PUBLIC KEY` or a public JWK. Throws an Error that says why not. */
export function parseRegistryKey(text: string, file: string): RegistryKey {
  const trimmed = text.trim();
  let key: KeyObject;
  let kid: string | undefined;
  if (trimmed.startsWith('{')) {
    let jwk: Record<string, unknown>;
    try {
      jwk = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('not a JWK (invalid JSON)');
    }
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error('not a JWK object');
    if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined)) throw new Error('it contains private key material; give HQ\'s public key only');
    if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || !KID.test(jwk.kid))) throw new Error('its "kid" is not 1 to 128 printable ASCII characters');
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      throw new Error('not a valid public JWK');
    }
    kid = jwk.kid as string | undefined;
    const alg = registryAlgorithmOf(key);
    if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`it declares alg ${JSON.stringify(jwk.alg)}, but the key is for ${alg}`);
  } else if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new Error('this is a private key; give HQ\'s public key only (replguard registry keygen writes both)');
  } else if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    try {
      key = createPublicKey(trimmed);
    } catch {
      throw new Error('not a readable PEM public key');
    }
  } else {
    throw new Error('not a PEM PUBLIC KEY nor a JWK');
  }
  return { kid: kid ?? registryKeyThumbprint(key), alg: registryAlgorithmOf(key), key, file };
}

/**
 * Reads every configured key, all or nothing: a ConfigError names each bad file under `keyPath`
 * (e.g. `control_plane.keys[1]`). Two keys with one kid are refused: the header would be ambiguous.
 */
export function loadRegistryKeys(files: readonly string[], keyPath: string): RegistryKeySet {
  const problems: ConfigProblem[] = [];
  const byKid = new Map<string, RegistryKey>();
  files.forEach((file, i) => {
    const at = `${keyPath}[${i}]`;
    const unreadable = checkReadableFile(file, at);
    if (unreadable) {
      problems.push(unreadable);
      return;
    }
    try {
      const key = parseRegistryKey(readFileSync(file, 'utf8'), file);
      const other = byKid.get(key.kid);
      if (other) problems.push({ path: at, message: `${file}: key id ${key.kid} is also ${other.file}'s` });
      else byKid.set(key.kid, key);
    } catch (err) {
      problems.push({ path: at, message: `${file}: ${(err as Error).message}` });
    }
  });
  if (files.length === 0) problems.push({ path: keyPath, message: 'list at least one HQ public key file' });
  if (problems.length > 0) throw new ConfigError(problems);
  return { byKid };
}

/** An HQ signing key: a PEM `PRIVATE KEY` (PKCS #8) of Ed25519 or P-256. */
export interface RegistrySigningKey {
  readonly kid: string;
  readonly alg: RegistryAlgorithm;
  readonly key: KeyObject;
}

/** Parses an HQ private key; its kid is its public key's thumbprint unless `kid` is given. */
export function parseRegistrySigningKey(text: string, kid?: string): RegistrySigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new Error('not a readable (unencrypted) PEM private key');
  }
  const alg = registryAlgorithmOf(key);
  if (kid !== undefined && !KID.test(kid)) throw new Error('a kid is 1 to 128 printable ASCII characters');
  return { kid: kid ?? registryKeyThumbprint(createPublicKey(key)), alg, key };
}

/** A new HQ key pair (PEM), for `replguard registry keygen`. */
export function generateRegistryKeyPair(alg: RegistryAlgorithm): { privatePem: string; publicPem: string; kid: string } {
  const pair = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privatePem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    kid: registryKeyThumbprint(pair.publicKey),
  };
}
