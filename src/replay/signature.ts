/**
 * Standard Webhooks request signatures: strict parsing of the three headers, and the signing and
 * verification primitives for `v1` (HMAC-SHA256) and `v1a` (Ed25519).
 *
 * Signed content is `<webhook-id>.<webhook-timestamp>.` followed by the body bytes exactly as
 * received. It is never decoded to a string first: the reference JS library decodes the body as
 * UTF-8 before signing, so two bodies that differ only in invalid UTF-8 bytes (both decoded to
 * U+FFFD) share its MAC; this verifier MACs the raw bytes and tells them apart.
 *
 * The signer role reuses the signing half (`signatureHeaders`).
 */
import { createHmac, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { macsEqual } from '../crypto/secret-compare.ts';
import { Rejection } from '../pipeline/reasons.ts';

/** The request headers of the scheme, lower-case; consumed here, never forwarded upstream. */
export const SIGNATURE_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/** Most entries in `webhook-signature` (a rotation needs two; eight leaves room, bounds work). */
export const MAX_SIGNATURE_ENTRIES = 8;
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
 * joined) and checks their form. Throws a Rejection naming the first problem.
 */
export function parseSignatureHeaders(rawHeaders: readonly string[]): SignedRequestHeaders {
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
  if (parts.length > MAX_SIGNATURE_ENTRIES) {
    throw new Rejection('SIGNATURE_TOO_MANY_ENTRIES', `${parts.length} entries, at most ${MAX_SIGNATURE_ENTRIES}`);
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

/**
 * The first key that verifies one of the entries over `prefix` + `body`, or undefined.
 * Each HMAC key is computed once and compared (constant time) with every v1 entry; each
 * Ed25519 key is tried against every v1a entry. Work is bounded by MAX_SIGNATURE_ENTRIES.
 */
export function findVerifyingKey(
  entries: readonly SignatureEntry[],
  prefix: Buffer,
  body: Buffer,
  keys: readonly VerifyKey[],
): VerifyKey | undefined {
  const macs = entries.filter((e) => e.version === 'v1').map((e) => e.signature);
  const sigs = entries.filter((e) => e.version === 'v1a').map((e) => e.signature);
  let message: Buffer | undefined;
  for (const key of keys) {
    if (key.version === 'v1' && macs.length > 0) {
      const expected = hmacSha256(key.key, prefix, body);
      let match = false;
      // No early exit between entries: which entry matched is not secret, but keep it uniform.
      for (const mac of macs) match = macsEqual(expected, mac) || match;
      if (match) return key;
    } else if (key.version === 'v1a' && sigs.length > 0) {
      message ??= Buffer.concat([prefix, body]);
      for (const sig of sigs) if (verifyEd25519(key.key, message, sig)) return key;
    }
  }
  return undefined;
}

/** One `webhook-signature` entry: `v1,<base64>` or `v1a,<base64>`. */
export function signEntry(key: SignKey, id: string, timestamp: string, body: Buffer): string {
  const prefix = signedPrefix(id, timestamp);
  const signature = key.version === 'v1'
    ? hmacSha256(key.key, prefix, body)
    : sign(null, Buffer.concat([prefix, body]), key.key);
  return `${key.version},${signature.toString('base64')}`;
}

/** A fresh webhook-id: 24 random bytes, base64url (32 characters of [A-Za-z0-9_-]). */
export function newWebhookId(): string {
  return randomBytes(24).toString('base64url');
}

/** True when `id` and `timestamp` have the form the guard accepts. */
export function isValidWebhookId(id: string): boolean {
  return ID.test(id);
}

export function isValidWebhookTimestamp(timestamp: string): boolean {
  return TIMESTAMP.test(timestamp);
}

/** The three headers for a request, signed with every key given (several during a rotation). */
export function signatureHeaders(keys: readonly SignKey[], body: Buffer, id: string, timestamp: string): Record<(typeof SIGNATURE_HEADERS)[number], string> {
  if (keys.length === 0 || keys.length > MAX_SIGNATURE_ENTRIES) throw new RangeError(`sign with 1 to ${MAX_SIGNATURE_ENTRIES} keys`);
  if (!ID.test(id)) throw new RangeError('webhook-id must be 16 to 128 characters of [A-Za-z0-9_-]');
  if (!TIMESTAMP.test(timestamp)) throw new RangeError('webhook-timestamp must be 1 to 12 decimal digits');
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': keys.map((k) => signEntry(k, id, timestamp, body)).join(' '),
  };
}
