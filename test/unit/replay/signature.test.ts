// Strict parsing of the three Standard Webhooks headers, and sign/verify interop.
import { createHmac, sign as edSign } from 'node:crypto';
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { parseVerifyKey, parseSignKey } from '../../../src/replay/keys.ts';
import {
  decodeCanonicalBase64,
  findVerifyingKey,
  parseSignatureHeaders,
  signatureHeaders,
  signedPrefix,
  newWebhookId,
} from '../../../src/replay/signature.ts';
import { makeEd25519Key, makeHmacKey } from '../../helpers/signing.ts';

const ID = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
const TS = '1763800000';
const V1 = `v1,${Buffer.alloc(32, 7).toString('base64')}`;
const V1A = `v1a,${Buffer.alloc(64, 9).toString('base64')}`;

function raw(headers: Record<string, string> | Array<[string, string]>): string[] {
  return (Array.isArray(headers) ? headers : Object.entries(headers)).flat();
}

function reasonOf(headers: Record<string, string> | Array<[string, string]>): string {
  try {
    parseSignatureHeaders(raw(headers));
    return 'ok';
  } catch (err) {
    if (err instanceof Rejection) return err.reason;
    throw err;
  }
}

const good = { 'webhook-id': ID, 'webhook-timestamp': TS, 'webhook-signature': V1 };

t.test('well-formed headers parse, names in any case', async (t) => {
  const parsed = parseSignatureHeaders(raw({ 'Webhook-Id': ID, 'WEBHOOK-TIMESTAMP': TS, 'webhook-signature': `${V1} ${V1A}` }));
  t.equal(parsed.id, ID);
  t.equal(parsed.timestamp, TS);
  t.equal(parsed.timestampSeconds, 1763800000);
  t.same(parsed.entries.map((e) => [e.version, e.signature.length]), [['v1', 32], ['v1a', 64]]);
  t.equal(reasonOf({ ...good, 'webhook-id': 'a'.repeat(16) }), 'ok', '16 characters');
  t.equal(reasonOf({ ...good, 'webhook-id': `${'A'.repeat(64)}${'_-'.repeat(32)}` }), 'ok', '128 characters');
  t.equal(reasonOf({ ...good, 'webhook-timestamp': '9'.repeat(12) }), 'ok', '12 digits');
  t.equal(reasonOf({ ...good, 'webhook-signature': Array(8).fill(V1).join(' ') }), 'ok', '8 entries');
});

t.test('every malformed form has its own reason code', async (t) => {
  const cases: Array<[string, Record<string, string> | Array<[string, string]>, string]> = [
    ['no headers at all', {}, 'SIGNATURE_HEADERS_MISSING'],
    ['no webhook-signature', { 'webhook-id': ID, 'webhook-timestamp': TS }, 'SIGNATURE_HEADERS_MISSING'],
    ['no webhook-id', { 'webhook-timestamp': TS, 'webhook-signature': V1 }, 'SIGNATURE_HEADERS_MISSING'],
    ['empty webhook-timestamp', { ...good, 'webhook-timestamp': '' }, 'SIGNATURE_HEADERS_MISSING'],
    ['webhook-id twice', [['webhook-id', ID], ['webhook-timestamp', TS], ['webhook-signature', V1], ['Webhook-ID', ID]], 'SIGNATURE_HEADER_REPEATED'],
    ['webhook-signature twice', [['webhook-id', ID], ['webhook-timestamp', TS], ['webhook-signature', V1], ['webhook-signature', V1A]], 'SIGNATURE_HEADER_REPEATED'],
    ['id containing "."', { ...good, 'webhook-id': 'msg.2KWPBgLlAfxdpx2AI54' }, 'SIGNATURE_ID_INVALID'],
    ['id of 15 characters', { ...good, 'webhook-id': 'a'.repeat(15) }, 'SIGNATURE_ID_INVALID'],
    ['id of 129 characters', { ...good, 'webhook-id': 'a'.repeat(129) }, 'SIGNATURE_ID_INVALID'],
    ['id with "+" (base64, not base64url)', { ...good, 'webhook-id': 'abcdefgh+ijklmnop' }, 'SIGNATURE_ID_INVALID'],
    ['id with a space', { ...good, 'webhook-id': 'abcdefgh ijklmnop' }, 'SIGNATURE_ID_INVALID'],
    ['id with non-ASCII', { ...good, 'webhook-id': 'abcdefghijklmnopé' }, 'SIGNATURE_ID_INVALID'],
    ['timestamp 1763800000abc', { ...good, 'webhook-timestamp': '1763800000abc' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['timestamp of 13 digits (milliseconds)', { ...good, 'webhook-timestamp': '1763800000000' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['negative timestamp', { ...good, 'webhook-timestamp': '-1763800000' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['fractional timestamp', { ...good, 'webhook-timestamp': '1763800000.5' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['exponent timestamp', { ...good, 'webhook-timestamp': '1.7638e9' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['timestamp with a leading space', { ...good, 'webhook-timestamp': ' 1763800000' }, 'SIGNATURE_TIMESTAMP_INVALID'],
    ['9 signature entries', { ...good, 'webhook-signature': Array(9).fill(V1).join(' ') }, 'SIGNATURE_TOO_MANY_ENTRIES'],
    ['entry without a comma', { ...good, 'webhook-signature': 'v1' }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['entry without a version', { ...good, 'webhook-signature': V1.slice(2) }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['empty signature', { ...good, 'webhook-signature': 'v1,' }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['two spaces between entries', { ...good, 'webhook-signature': `${V1}  ${V1A}` }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['comma-separated entries', { ...good, 'webhook-signature': `${V1},${V1A}` }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['URL-safe base64', { ...good, 'webhook-signature': `v1,${Buffer.alloc(32, 0xfb).toString('base64url')}=` }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['base64 without padding', { ...good, 'webhook-signature': V1.replace(/=+$/, '') }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['base64 with non-zero trailing bits', { ...good, 'webhook-signature': `v1,${Buffer.alloc(32, 7).toString('base64').replace(/c=$/, 'd=')}` }, 'SIGNATURE_ENTRY_MALFORMED'],
    ['hex instead of base64', { ...good, 'webhook-signature': `v1,${Buffer.alloc(32, 7).toString('hex')}` }, 'SIGNATURE_LENGTH_INVALID'],
    ['unknown version v2', { ...good, 'webhook-signature': V1.replace('v1,', 'v2,') }, 'SIGNATURE_VERSION_UNKNOWN'],
    ['upper-case version V1', { ...good, 'webhook-signature': V1.replace('v1,', 'V1,') }, 'SIGNATURE_VERSION_UNKNOWN'],
    ['a valid entry beside an unknown version', { ...good, 'webhook-signature': `${V1} v1b,${Buffer.alloc(32).toString('base64')}` }, 'SIGNATURE_VERSION_UNKNOWN'],
    ['v1 of 64 bytes', { ...good, 'webhook-signature': `v1,${Buffer.alloc(64).toString('base64')}` }, 'SIGNATURE_LENGTH_INVALID'],
    ['v1 truncated to 16 bytes', { ...good, 'webhook-signature': `v1,${Buffer.alloc(16).toString('base64')}` }, 'SIGNATURE_LENGTH_INVALID'],
    ['v1a of 32 bytes', { ...good, 'webhook-signature': `v1a,${Buffer.alloc(32).toString('base64')}` }, 'SIGNATURE_LENGTH_INVALID'],
    ['v1a of 63 bytes', { ...good, 'webhook-signature': `v1a,${Buffer.alloc(63).toString('base64')}` }, 'SIGNATURE_LENGTH_INVALID'],
  ];
  for (const [name, headers, reason] of cases) t.equal(reasonOf(headers), reason, name);
});

t.test('canonical base64 only', async (t) => {
  t.same(decodeCanonicalBase64('AAAA'), Buffer.alloc(3));
  t.same(decodeCanonicalBase64('AAA='), Buffer.alloc(2));
  t.equal(decodeCanonicalBase64('AAB='), undefined, 'trailing bits set');
  t.equal(decodeCanonicalBase64('A A='), undefined);
  t.equal(decodeCanonicalBase64(''), undefined);
});

t.test('interop: the standardwebhooks reference library', async (t) => {
  const hmac = makeHmacKey();
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1 }] }));
  const lib = new Webhook(hmac.text);
  const libSignature = lib.sign(ID, new Date(Number(TS) * 1000), body.toString());
  const parsed = parseSignatureHeaders(raw({ 'webhook-id': ID, 'webhook-timestamp': TS, 'webhook-signature': libSignature }));
  const key = parseVerifyKey(hmac.text);
  t.equal(findVerifyingKey(parsed.entries, signedPrefix(ID, TS), body, [key]), key, 'a v1 signature made by the library verifies');

  const ours = signatureHeaders([parseSignKey(hmac.text)], body, ID, TS);
  t.equal(ours['webhook-signature'], libSignature, 'our v1 signature is byte for byte the library\'s');

  const fresh = signatureHeaders([parseSignKey(hmac.text)], body, newWebhookId(), String(Math.floor(Date.now() / 1000)));
  t.same(lib.verify(body.toString(), fresh), JSON.parse(body.toString()), 'and the library verifies ours');
});

t.test('interop: Ed25519 (v1a) signed with node:crypto directly', async (t) => {
  const ed = makeEd25519Key();
  const body = Buffer.from('{"source_pop":"calgary-01","entries":[]}');
  const sig = edSign(null, Buffer.from(`${ID}.${TS}.${body.toString()}`), ed.privateKey).toString('base64');
  const parsed = parseSignatureHeaders(raw({ 'webhook-id': ID, 'webhook-timestamp': TS, 'webhook-signature': `v1a,${sig}` }));
  for (const text of [ed.whpk, ed.publicPem]) {
    const key = parseVerifyKey(text);
    t.equal(findVerifyingKey(parsed.entries, signedPrefix(ID, TS), body, [key]), key, text.slice(0, 10));
  }
  const tampered = Buffer.from(body);
  tampered[5] ^= 1;
  t.equal(findVerifyingKey(parsed.entries, signedPrefix(ID, TS), tampered, [parseVerifyKey(ed.whpk)]), undefined, 'one flipped bit fails');
});

t.test('raw bytes are signed: two invalid-UTF-8 bodies the reference library cannot tell apart', async (t) => {
  const hmac = makeHmacKey();
  const a = Buffer.from('{"source_pop":"calgary-01","x":"\xff"}', 'latin1');
  const b = Buffer.from('{"source_pop":"calgary-01","x":"\xfe"}', 'latin1');
  const lib = new Webhook(hmac.text);
  const date = new Date(Number(TS) * 1000);
  t.equal(lib.sign(ID, date, a), lib.sign(ID, date, b), 'the library decodes both to U+FFFD: same MAC');
  const signA = signatureHeaders([parseSignKey(hmac.text)], a, ID, TS)['webhook-signature'];
  const entries = parseSignatureHeaders(raw({ 'webhook-id': ID, 'webhook-timestamp': TS, 'webhook-signature': signA })).entries;
  const key = parseVerifyKey(hmac.text);
  t.equal(findVerifyingKey(entries, signedPrefix(ID, TS), a, [key]), key);
  t.equal(findVerifyingKey(entries, signedPrefix(ID, TS), b, [key]), undefined, 'ours does not verify the other body');
  const direct = createHmac('sha256', hmac.secret).update(`${ID}.${TS}.`).update(a).digest('base64');
  t.equal(signA, `v1,${direct}`);
});

t.test('rotation: any entry by any listed key; a retired key alone fails', async (t) => {
  const current = makeHmacKey();
  const retired = makeHmacKey();
  const next = makeEd25519Key();
  const body = Buffer.from('{}');
  const keys = [parseVerifyKey(current.text), parseVerifyKey(next.whpk)];
  const both = signatureHeaders([parseSignKey(retired.text), parseSignKey(current.text)], body, ID, TS)['webhook-signature'];
  const entries = (s: string) => parseSignatureHeaders(raw({ ...good, 'webhook-signature': s })).entries;
  t.equal(findVerifyingKey(entries(both), signedPrefix(ID, TS), body, keys), keys[0]);
  const edOnly = signatureHeaders([parseSignKey(next.privatePem)], body, ID, TS)['webhook-signature'];
  t.equal(findVerifyingKey(entries(edOnly), signedPrefix(ID, TS), body, keys), keys[1]);
  const retiredOnly = signatureHeaders([parseSignKey(retired.text)], body, ID, TS)['webhook-signature'];
  t.equal(findVerifyingKey(entries(retiredOnly), signedPrefix(ID, TS), body, keys), undefined);
  const otherId = signatureHeaders([parseSignKey(current.text)], body, `${ID}x`, TS)['webhook-signature'];
  t.equal(findVerifyingKey(entries(otherId), signedPrefix(ID, TS), body, keys), undefined, 'the id is signed');
  const otherTs = signatureHeaders([parseSignKey(current.text)], body, ID, '1763800001')['webhook-signature'];
  t.equal(findVerifyingKey(entries(otherTs), signedPrefix(ID, TS), body, keys), undefined, 'the timestamp is signed');
});
