/**
 * Standard Webhooks request signatures: strict parsing of the three headers, and the
 * verification (and MAC) primitives for `v1` (HMAC-SHA256) and `v1a` (Ed25519).
 *
 * Signed content is `<webhook-id>.<webhook-timestamp>.` followed by the body bytes exactly as
 * received. It is never decoded to a string first: the reference JS library decodes the body as
 * UTF-8 before signing, so two bodies that differ only in invalid UTF-8 bytes (both decoded to
 * U+FFFD) share its MAC; this verifier MACs the raw bytes and tells them apart.
 *
 * Where the work runs: below OFF_THREAD_MIN_BYTES of signed content every check is done at once
 * with node:crypto, on the event loop (cheap: well under a millisecond each). From that size on,
 * no check holds the event loop for the whole content:
 * - An HMAC is computed on the event loop in slices of HMAC_SLICE_BYTES (node:crypto's Hmac is
 *   incremental), the loop given back between two: no copy of the body is made. It used to go to
 *   WebCrypto like Ed25519, which copies the content twice (the prefix joined to the body, then
 *   WebCrypto's own copy): about 1.05 ms of CPU per MiB against 0.7 ms in slices, and 2 MiB of
 *   short-lived buffers per request that the garbage collector pays for (issue 22, sat-1m).
 * - Ed25519 cannot be hashed incrementally (RFC 8032 hashes R || A || M per signature, and the
 *   scheme is pure Ed25519, not Ed25519ph): it goes to WebCrypto (`crypto.subtle`), which runs it
 *   off the event loop (Node: libuv's threadpool; Deno 2: its own worker threads, measured with
 *   bench/signature-cpu.mjs), one check after another for a request: a 10 MiB body then holds
 *   the event loop for the copy of the content WebCrypto takes per check (a few ms), not for the
 *   hashing (about 13 ms per Ed25519 check).
 *
 * The signing half (`signatureHeaders`, `signRequest`) is replay/signing.ts.
 */
import { createHmac, verify, webcrypto, type KeyObject } from 'node:crypto';
import { macsEqual } from '../crypto/secret-compare.ts';
import { Rejection } from '../pipeline/reasons.ts';
import { nextTurn } from './json-structure.ts';

/** The request headers of the scheme, lower-case; consumed here, never forwarded upstream. */
export const SIGNATURE_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/**
 * Most entries in `webhook-signature` (a rotation needs two; eight leaves room, bounds work):
 * the upper bound of `replay.max_signature_entries` and of the keys the signer signs with.
 */
export const MAX_SIGNATURE_ENTRIES = 8;
/**
 * Signed content (prefix + body) from this many bytes on is not checked at once on the event
 * loop: HMACs in slices (HMAC_SLICE_BYTES), Ed25519 off the main thread (the signer signs
 * alike). Measured on Node 20 (docs/replay.md, "Costs and limits"): at 64 KiB one check
 * costs 0.04 ms (HMAC) to 0.15 ms (Ed25519) on the event loop, about what a round trip to the
 * threadpool costs, so smaller bodies gain nothing from it; from 1 MiB on a check costs 0.6 to
 * 1.5 ms and grows linearly, which must not hold the event loop in one block. The worst small
 * request (8 entries x 2 Ed25519 keys just under 64 KiB) then holds the loop under 3 ms, about
 * what one off-thread check of a 10 MiB body holds it for (WebCrypto's copy of the content).
 */
export const OFF_THREAD_MIN_BYTES = 64 * 1024;
/**
 * Bytes of content an HMAC takes between two turns of the event loop (256 KiB: about 0.15 ms on
 * the bench's machine, the order of one slice of the body contract; a turn costs a few µs).
 */
export const HMAC_SLICE_BYTES = 256 * 1024;
/** Exact decoded lengths: an HMAC-SHA256 tag (never truncated) and an Ed25519 signature. */
export const SIGNATURE_BYTES = { v1: 32, v1a: 64 } as const;

export type SignatureVersion = keyof typeof SIGNATURE_BYTES;

const ID = /^[A-Za-z0-9_-]{16,128}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface SignatureEntry {
  readonly version: SignatureVersion;
  readonly signature: Buffer;
}

/** The three headers, parsed and checked for form (not yet verified). */
export interface SignedRequestHeaders {
  /** webhook-id, the nonce. */
  readonly id: string;
  /** webhook-timestamp exactly as sent (it is part of the signed content). */
  readonly timestamp: string;
  /** The same, in Unix seconds. */
  readonly timestampSeconds: number;
  readonly entries: readonly SignatureEntry[];
}

/** A key that verifies signatures: an HMAC secret (`v1`) or an Ed25519 public key (`v1a`). */
export interface VerifyKey {
  readonly version: SignatureVersion;
  /** A secret KeyObject for v1, a public one for v1a. */
  readonly key: KeyObject;
  /** A short SHA-256 of the key material, to name the key in logs (never the key). */
  readonly id: string;
}

/** A key that signs: an HMAC secret (`v1`) or an Ed25519 private key (`v1a`). */
export interface SignKey {
  readonly version: SignatureVersion;
  readonly key: KeyObject;
}

/**
 * Reads the three headers from the raw header list (so that a repeated header is seen, not
 * joined) and checks their form, with at most `maxEntries` signature entries (counted before
 * any is decoded). Throws a Rejection naming the first problem.
 */
export function parseSignatureHeaders(rawHeaders: readonly string[], maxEntries = MAX_SIGNATURE_ENTRIES): SignedRequestHeaders {
  const values = new Map<string, string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name !== 'webhook-id' && name !== 'webhook-timestamp' && name !== 'webhook-signature') continue;
    if (values.has(name)) throw new Rejection('SIGNATURE_HEADER_REPEATED', `${name} sent more than once`);
    values.set(name, rawHeaders[i + 1]!);
  }
  const missing = SIGNATURE_HEADERS.filter((h) => !values.get(h));
  if (missing.length > 0) throw new Rejection('SIGNATURE_HEADERS_MISSING', `missing ${missing.join(', ')}`);
  const id = values.get('webhook-id')!;
  const timestamp = values.get('webhook-timestamp')!;
  const header = values.get('webhook-signature')!;

  if (!ID.test(id)) throw new Rejection('SIGNATURE_ID_INVALID', `webhook-id of ${id.length} characters is not 16-128 of [A-Za-z0-9_-]`);
  if (!TIMESTAMP.test(timestamp)) throw new Rejection('SIGNATURE_TIMESTAMP_INVALID', 'webhook-timestamp is not 1-12 decimal digits');

  const parts = header.split(' ');
  if (parts.length > maxEntries) {
    throw new Rejection('SIGNATURE_TOO_MANY_ENTRIES', `${parts.length} entries, at most ${maxEntries}`);
  }
  const entries = parts.map((part, index) => parseEntry(part, index));
  return { id, timestamp, timestampSeconds: Number(timestamp), entries };
}

function parseEntry(part: string, index: number): SignatureEntry {
  const comma = part.indexOf(',');
  if (comma <= 0) throw new Rejection('SIGNATURE_ENTRY_MALFORMED', `entry ${index} is not version,signature`);
  const version = part.slice(0, comma);
  if (version !== 'v1' && version !== 'v1a') {
    throw new Rejection('SIGNATURE_VERSION_UNKNOWN', `entry ${index} has a version other than v1 or v1a`);
  }
  const signature = decodeCanonicalBase64(part.slice(comma + 1));
  if (!signature) throw new Rejection('SIGNATURE_ENTRY_MALFORMED', `entry ${index} is not canonical padded base64`);
  if (signature.length !== SIGNATURE_BYTES[version]) {
    throw new Rejection('SIGNATURE_LENGTH_INVALID', `entry ${index} (${version}) decodes to ${signature.length} bytes, not ${SIGNATURE_BYTES[version]}`);
  }
  return { version, signature };
}

/**
 * Standard base64 (RFC 4648 section 4) with padding, in its one canonical form. Buffer.from
 * alone also takes the URL-safe alphabet, missing padding, stray characters and non-zero
 * trailing bits; re-encoding and comparing refuses all of those.
 */
export function decodeCanonicalBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** `<id>.<timestamp>.`: the part of the signed content before the body. */
export function signedPrefix(id: string, timestamp: string): Buffer {
  return Buffer.from(`${id}.${timestamp}.`, 'latin1');
}

/** HMAC-SHA256 over the prefix and the raw body (no copy of the body is made). */
export function hmacSha256(key: KeyObject | Buffer, prefix: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(prefix).update(body).digest();
}

/**
 * hmacSha256 for large content: HMAC_SLICE_BYTES of the body at a time, the event loop given
 * back (`pause`) between two, so that other connections wait for one slice at most. No copy of
 * the body is made (`subarray` views it).
 */
export async function hmacSha256InSlices(key: KeyObject | Buffer, prefix: Buffer, body: Buffer, pause: () => Promise<void> = nextTurn): Promise<Buffer> {
  const hmac = createHmac('sha256', key).update(prefix);
  for (let at = 0; at < body.length; at += HMAC_SLICE_BYTES) {
    if (at > 0) await pause();
    hmac.update(body.subarray(at, at + HMAC_SLICE_BYTES));
  }
  return hmac.digest();
}

/**
 * Verifies an HMAC-SHA256 tag over `message` in constant time. A tag of any length other than
 * 32 bytes is refused: truncated tags are not part of the scheme.
 */
export function verifyHmacSha256(key: KeyObject | Buffer, message: Buffer, tag: Buffer): boolean {
  if (tag.length !== SIGNATURE_BYTES.v1) return false;
  return macsEqual(createHmac('sha256', key).update(message).digest(), tag);
}

/** Verifies an Ed25519 signature (RFC 8032, as OpenSSL implements it); false on any failure. */
export function verifyEd25519(publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  if (signature.length !== SIGNATURE_BYTES.v1a) return false;
  try {
    return verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

/** One key's share of a verification, reported to `VerifyOptions.onWork` (tests and the bench count it). */
export interface VerificationWork {
  readonly version: SignatureVersion;
  /** The key's id (a short SHA-256 of its material, never the key). */
  readonly keyId: string;
  /** (entry, key) pairs checked: every entry of the key's version, fewer when one verified. */
  readonly pairs: number;
  /** Passes over the signed content: 1 for an HMAC key (one MAC for all v1 entries), one per pair for Ed25519. */
  readonly passes: number;
  /**
   * Where the passes ran: at once on the event loop (node:crypto), on it in slices with the loop
   * given back in between (an HMAC of large content), or off the main thread (WebCrypto: Ed25519
   * of large content).
   */
  readonly where: VerificationPath;
}

export type VerificationPath = 'at once' | 'in slices' | 'off thread';

export interface VerifyOptions {
  /** Signed content of at least this many bytes is not checked at once on the event loop. Default OFF_THREAD_MIN_BYTES. */
  readonly offThreadMinBytes?: number;
  /** Waits for the next turn of the event loop between two slices of an HMAC (tests count them). */
  readonly pause?: () => Promise<void>;
  /** Called once per key tried, with what it cost. */
  readonly onWork?: (work: VerificationWork) => void;
}

/**
 * The first key that verifies one of the entries over `prefix` + `body`, or undefined. Only the
 * keys given are tried (the caller passes the authenticated POP's): at most `entries` x `keys`
 * pairs. Each HMAC key is computed once and compared (constant time) with every v1 entry; each
 * Ed25519 key is tried against every v1a entry. From `offThreadMinBytes` of signed content an
 * HMAC runs in slices and Ed25519 on WebCrypto, one pass at a time, so that one request keeps at
 * most one worker thread busy and the event loop serves other connections in between; below it
 * they run at once on node:crypto (the promise is then already settled when it is returned).
 */
export async function findVerifyingKey(
  entries: readonly SignatureEntry[],
  prefix: Buffer,
  body: Buffer,
  keys: readonly VerifyKey[],
  options: VerifyOptions = {},
): Promise<VerifyKey | undefined> {
  const macs = entries.filter((e) => e.version === 'v1').map((e) => e.signature);
  const sigs = entries.filter((e) => e.version === 'v1a').map((e) => e.signature);
  const large = prefix.length + body.length >= (options.offThreadMinBytes ?? OFF_THREAD_MIN_BYTES);
  let message: Buffer | undefined;
  for (const key of keys) {
    if (key.version === 'v1' && macs.length > 0) {
      const expected = large ? await hmacSha256InSlices(key.key, prefix, body, options.pause) : hmacSha256(key.key, prefix, body);
      let match = false;
      // No early exit between entries: which entry matched is not secret, but keep it uniform.
      for (const mac of macs) match = macsEqual(expected, mac) || match;
      options.onWork?.({ version: 'v1', keyId: key.id, pairs: macs.length, passes: 1, where: large ? 'in slices' : 'at once' });
      if (match) return key;
    } else if (key.version === 'v1a' && sigs.length > 0) {
      message ??= Buffer.concat([prefix, body]);
      let pairs = 0;
      let verified = false;
      for (const sig of sigs) {
        pairs += 1;
        verified = large ? await verifyEd25519OffThread(key.key, message, sig) : verifyEd25519(key.key, message, sig);
        if (verified) break;
      }
      options.onWork?.({ version: 'v1a', keyId: key.id, pairs, passes: pairs, where: large ? 'off thread' : 'at once' });
      if (verified) return key;
    }
  }
  return undefined;
}

// --- Off the main thread: WebCrypto, for Ed25519 ------------------------------------------
// node:crypto's KeyObject has no CryptoKey form before Node 23 (`toCryptoKey`), so each key is
// imported into WebCrypto once, on first use, from its exported material, as a non-extractable
// key for the one usage it has here. Keyed by the KeyObject: a reload makes new KeyObjects,
// and the old keys' imports go with them.
export const { subtle } = webcrypto;
const cryptoKeys = new WeakMap<KeyObject, Promise<webcrypto.CryptoKey>>();

export function cryptoKeyOf(key: KeyObject): Promise<webcrypto.CryptoKey> {
  let imported = cryptoKeys.get(key);
  if (!imported) {
    imported = importCryptoKey(key);
    cryptoKeys.set(key, imported);
    // A failed import is not cached: the next use tries again (and fails the same way, loudly).
    imported.catch(() => cryptoKeys.delete(key));
  }
  return imported;
}

// Ed25519 keys only: HMACs run in slices on node:crypto (hmacSha256InSlices), so an HMAC secret
// is never exported into WebCrypto.
async function importCryptoKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError(`not an Ed25519 key: ${key.asymmetricKeyType ?? key.type}`);
  if (key.type === 'public') return subtle.importKey('spki', key.export({ format: 'der', type: 'spki' }), { name: 'Ed25519' }, false, ['verify']);
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    return await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  } finally {
    pkcs8.fill(0);
  }
}

/** verifyEd25519, off the main thread (WebCrypto); false on any verification failure. */
export async function verifyEd25519OffThread(publicKey: KeyObject, message: Buffer, signature: Buffer): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES.v1a) return false;
  // Outside the try: a key WebCrypto cannot import is a bug to surface (INTERNAL), not a mismatch.
  const cryptoKey = await cryptoKeyOf(publicKey);
  try {
    return await subtle.verify('Ed25519', cryptoKey, signature, message);
  } catch {
    return false;
  }
}

/** True when `id` and `timestamp` have the form the guard accepts. */
export function isValidWebhookId(id: string): boolean {
  return ID.test(id);
}

export function isValidWebhookTimestamp(timestamp: string): boolean {
  return TIMESTAMP.test(timestamp);
}
