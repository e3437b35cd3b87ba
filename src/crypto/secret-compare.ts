/**
 * The one place where a presented secret or MAC is compared with a configured or computed one
 * (bearer secrets in auth/, Standard Webhooks HMACs in replay/).
 *
 * Both sides are reduced to SHA-256 digests first and the digests are compared with
 * `crypto.timingSafeEqual`: the comparison then takes the same time whatever the lengths or
 * the contents (timingSafeEqual alone throws on a length difference, which would leak the
 * configured length). Every candidate is compared, with no early exit, so the time does not
 * say which one matched either. A unit test checks that no other module compares secrets.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The SHA-256 digest a secret is stored and compared as (32 bytes). */
export function digestSecret(secret: string | Uint8Array): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** True when the two secrets are equal; constant time in their lengths and contents. */
export function secretsEqual(presented: string | Uint8Array, expected: string | Uint8Array): boolean {
  return timingSafeEqual(digestSecret(presented), digestSecret(expected));
}

/**
 * True when two MACs (or digests) of public, fixed length are equal, compared in constant time.
 * Unequal lengths are false at once: the expected length is part of the public scheme.
 */
export function macsEqual(computed: Uint8Array, presented: Uint8Array): boolean {
  return computed.length === presented.length && timingSafeEqual(computed, presented);
}

/**
 * The candidate whose digest equals the presented secret's, or undefined. All candidates are
 * compared whatever matches, so the time depends only on how many there are.
 */
export function findSecret<T extends { readonly digest: Buffer }>(presented: string | Uint8Array, candidates: readonly T[]): T | undefined {
  const digest = digestSecret(presented);
  let found: T | undefined;
  for (const candidate of candidates) {
    // No early exit: the loop always runs to the end.
    const equal = timingSafeEqual(digest, candidate.digest);
    if (equal && found === undefined) found = candidate;
  }
  return found;
}

/** A short, non-reversible identifier of a credential for the audit log: 12 hex digits of its SHA-256. */
export function credentialFingerprint(credential: string | Uint8Array): string {
  return credentialHash(credential).slice(0, 12);
}

/** The full SHA-256 of a credential, lower-case hex: a cache key that never holds the credential. */
export function credentialHash(credential: string | Uint8Array): string {
  return createHash('sha256').update(credential).digest('hex');
}
