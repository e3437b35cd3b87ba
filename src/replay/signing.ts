/**
 * The signing side of Standard Webhooks (the signer, role: primary, and `replguard sign`): fresh
 * ids, one `webhook-signature` entry per key, the three headers. Verification is
 * replay/signature.ts, over the same signed prefix.
 */
import { randomBytes, sign } from 'node:crypto';
import { cryptoKeyOf, hmacSha256, hmacSha256InSlices, isValidWebhookId, isValidWebhookTimestamp, MAX_SIGNATURE_ENTRIES, OFF_THREAD_MIN_BYTES, type SIGNATURE_HEADERS, signedPrefix, subtle, type SignKey } from './signature.ts';

/** One `webhook-signature` entry: `v1,<base64>` or `v1a,<base64>`, computed on the main thread. */
export function signEntry(key: SignKey, id: string, timestamp: string, body: Buffer): string {
  const prefix = signedPrefix(id, timestamp);
  const signature = key.version === 'v1'
    ? hmacSha256(key.key, prefix, body)
    : sign(null, Buffer.concat([prefix, body]), key.key);
  return `${key.version},${signature.toString('base64')}`;
}

/** An Ed25519 entry computed off the main thread (WebCrypto); Ed25519 is deterministic, so it is the same string. */
async function ed25519EntryOffThread(key: SignKey, message: Buffer): Promise<string> {
  const cryptoKey = await cryptoKeyOf(key.key);
  const signature = await subtle.sign('Ed25519', cryptoKey, message);
  return `${key.version},${Buffer.from(signature).toString('base64')}`;
}

/** A fresh webhook-id: 24 random bytes, base64url (32 characters of [A-Za-z0-9_-]). */
export function newWebhookId(): string {
  return randomBytes(24).toString('base64url');
}

/** The three headers for a request, signed with every key given (several during a rotation), on the main thread. */
export function signatureHeaders(keys: readonly SignKey[], body: Buffer, id: string, timestamp: string): Record<(typeof SIGNATURE_HEADERS)[number], string> {
  checkSigningInput(keys, id, timestamp);
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': keys.map((k) => signEntry(k, id, timestamp, body)).join(' '),
  };
}

/**
 * signatureHeaders for a server (the signer role): the same headers, from `offThreadMinBytes`
 * of signed content on computed without holding the event loop (one key after another): an
 * HMAC in slices on it, Ed25519 off the main thread (replay/signature.ts says why), so that a
 * large batch does not hold up the signer's other connections.
 */
export async function signRequest(
  keys: readonly SignKey[],
  body: Buffer,
  id: string,
  timestamp: string,
  offThreadMinBytes = OFF_THREAD_MIN_BYTES,
): Promise<Record<(typeof SIGNATURE_HEADERS)[number], string>> {
  checkSigningInput(keys, id, timestamp);
  const prefix = signedPrefix(id, timestamp);
  if (prefix.length + body.length < offThreadMinBytes) return signatureHeaders(keys, body, id, timestamp);
  let message: Buffer | undefined;
  const entries: string[] = [];
  for (const key of keys) {
    if (key.version === 'v1') {
      entries.push(`v1,${(await hmacSha256InSlices(key.key, prefix, body)).toString('base64')}`);
    } else {
      message ??= Buffer.concat([prefix, body]);
      entries.push(await ed25519EntryOffThread(key, message));
    }
  }
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': entries.join(' ') };
}

function checkSigningInput(keys: readonly SignKey[], id: string, timestamp: string): void {
  if (keys.length === 0 || keys.length > MAX_SIGNATURE_ENTRIES) throw new RangeError(`sign with 1 to ${MAX_SIGNATURE_ENTRIES} keys`);
  if (!isValidWebhookId(id)) throw new RangeError('webhook-id must be 16 to 128 characters of [A-Za-z0-9_-]');
  if (!isValidWebhookTimestamp(timestamp)) throw new RangeError('webhook-timestamp must be 1 to 12 decimal digits');
}
