/** Signature keys for the tests: made once per test file, written to 0600 files. */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface HmacKey {
  /** `whsec_<base64>`, what the key file holds. */
  readonly text: string;
  readonly secret: Buffer;
}

export interface Ed25519Key {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** `whpk_<base64>` of the raw public key. */
  readonly whpk: string;
  readonly publicPem: string;
  readonly privatePem: string;
}

export function makeHmacKey(bytes = 32): HmacKey {
  const secret = randomBytes(bytes);
  return { text: `whsec_${secret.toString('base64')}`, secret };
}

export function makeEd25519Key(): Ed25519Key {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x!;
  return {
    privateKey,
    publicKey,
    whpk: `whpk_${Buffer.from(raw, 'base64url').toString('base64')}`,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

let counter = 0;
const dir = mkdtempSync(join(tmpdir(), 'replguard-keys-'));

/** Writes `text` to a fresh file with `mode` (0600 by default) and returns its path. */
export function writeKeyFile(text: string, mode = 0o600): string {
  const file = join(dir, `key-${process.pid}-${counter++}`);
  writeFileSync(file, `${text}\n`, { mode });
  chmodSync(file, mode);
  return file;
}
