/**
 * Signing replguard JWTs: the key checks and the signature that `make-jwt` and the signer role
 * (which mints a fresh token per attempt) share, so that both produce exactly what the guard
 * verifies (auth/jwt.ts) from the one claim builder (auth/jwt-claims.ts).
 *
 * The algorithm follows the key (RSA: RS256 unless another RS* or PS* is asked for; P-256:
 * ES256; P-384: ES384; P-521: ES512; Ed25519: EdDSA), and the key must pass the checks the guard
 * makes on its public half (RSA at least 2048 bits with exponent 65537, no ROCA modulus). The
 * header's kid is the RFC 7638 thumbprint of the public key, which is also what the guard uses
 * for a PEM key.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../config/schema.ts';
import { checkVerificationJwk, jwkThumbprint } from './jwt-keys.ts';

/** A private key ready to sign, with its algorithm and kid. */
export interface MintKey {
  readonly key: KeyObject;
  readonly alg: JwtAlgorithm;
  readonly kid: string;
}

/** What is wrong with a signing key: `key` (the key itself) or `alg` (the algorithm asked for). */
export class MintKeyError extends Error {
  readonly subject: 'key' | 'alg';

  constructor(subject: 'key' | 'alg', message: string) {
    super(message);
    this.name = 'MintKeyError';
    this.subject = subject;
  }
}

/** The algorithm for a key (or the requested one), or a description of what cannot sign. */
function algorithmFor(key: KeyObject, requested: string | undefined): string {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return requested ?? 'RS256';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const alg = curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : `an EC key on ${curve}`;
    return requested ?? alg;
  }
  if (type === 'ed25519') return requested ?? 'EdDSA';
  return `a ${type} key`;
}

/**
 * Parses an unencrypted PEM private key and checks that it can sign a token the guard accepts.
 * Throws a MintKeyError saying what is wrong.
 */
export function parseMintKey(pem: string | Buffer, requestedAlg?: string): MintKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new MintKeyError('key', `not an unencrypted PEM private key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const chosen = algorithmFor(key, requestedAlg);
  if (!(JWT_ALGORITHMS as readonly string[]).includes(chosen)) {
    throw new MintKeyError('alg', `${chosen} cannot sign a token the guard accepts (${JWT_ALGORITHMS.join(', ')})`);
  }
  const alg = chosen as JwtAlgorithm;
  const publicKey = createPublicKey(key);
  try {
    checkVerificationJwk(publicKey.export({ format: 'jwk' }) as Record<string, unknown>, alg);
  } catch (err) {
    throw new MintKeyError('key', (err as Error).message);
  }
  return { key, alg, kid: jwkThumbprint(publicKey) };
}

/** Signs a claim set (from buildClaimSet) as a compact JWS with `typ: JWT` and the key's kid. */
export function mintJwt(key: MintKey, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid }).sign(key.key);
}

/** RFC 8705 `x5t#S256` of a certificate: base64url SHA-256 of its DER encoding. Throws when not a PEM certificate. */
export function certificateThumbprint(pem: string | Buffer): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
}
