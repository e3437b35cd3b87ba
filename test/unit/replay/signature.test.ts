// Strict parsing of the three Standard Webhooks headers, and sign/verify interop.
import { createHmac, sign as edSign } from 'node:crypto';
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { parseVerifyKey, parseSignKey } from '../../../src/replay/keys.ts';
import { decodeCanonicalBase64, findVerifyingKey, HMAC_SLICE_BYTES, hmacSha256, hmacSha256InSlices, MAX_SIGNATURE_ENTRIES, OFF_THREAD_MIN_BYTES, parseSignatureHeaders, signedPrefix, type SignatureEntry, type VerificationWork, type VerifyKey } from '../../../src/replay/signature.ts';
import { signatureHeaders, signRequest, newWebhookId } from '../../../src/replay/signing.ts';
import { REPLAY_DEFAULTS } from '../../../src/config/schema.ts';
import { makeEd25519Key, makeHmacKey } from '../../helpers/signing.ts';

const ID = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
const TS = '1763800000';
const V1 = `v1,${Buffer.alloc(32, 7).toString('base64')}`;
const V1A = `v1a,${Buffer.alloc(64, 9).toString('base64')}`;

/** findVerifyingKey on both paths (at once on the event loop; the large-content path: HMAC in slices, Ed25519 on WebCrypto): they must agree. */
async function findKey(entries: readonly SignatureEntry[], prefix: Buffer, body: Buffer, keys: readonly VerifyKey[]): Promise<VerifyKey | undefined> {
  const atOnce = await findVerifyingKey(entries, prefix, body, keys, { offThreadMinBytes: Infinity });
  const large = await findVerifyingKey(entries, prefix, body, keys, { offThreadMinBytes: 0 });
  if (atOnce !== large) throw new Error(`the two paths disagree: ${atOnce?.id} at once, ${large?.id} on the large-content path`);
  return atOnce;
}

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
  t.equal(await findKey(parsed.entries, signedPrefix(ID, TS), body, [key]), key, 'a v1 signature made by the library verifies');

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
    t.equal(await findKey(parsed.entries, signedPrefix(ID, TS), body, [key]), key, text.slice(0, 10));
  }
  const tampered = Buffer.from(body);
  tampered[5] ^= 1;
  t.equal(await findKey(parsed.entries, signedPrefix(ID, TS), tampered, [parseVerifyKey(ed.whpk)]), undefined, 'one flipped bit fails');
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
  t.equal(await findKey(entries, signedPrefix(ID, TS), a, [key]), key);
  t.equal(await findKey(entries, signedPrefix(ID, TS), b, [key]), undefined, 'ours does not verify the other body');
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
  t.equal(await findKey(entries(both), signedPrefix(ID, TS), body, keys), keys[0]);
  const edOnly = signatureHeaders([parseSignKey(next.privatePem)], body, ID, TS)['webhook-signature'];
  t.equal(await findKey(entries(edOnly), signedPrefix(ID, TS), body, keys), keys[1]);
  const retiredOnly = signatureHeaders([parseSignKey(retired.text)], body, ID, TS)['webhook-signature'];
  t.equal(await findKey(entries(retiredOnly), signedPrefix(ID, TS), body, keys), undefined);
  const otherId = signatureHeaders([parseSignKey(current.text)], body, `${ID}x`, TS)['webhook-signature'];
  t.equal(await findKey(entries(otherId), signedPrefix(ID, TS), body, keys), undefined, 'the id is signed');
  const otherTs = signatureHeaders([parseSignKey(current.text)], body, ID, '1763800001')['webhook-signature'];
  t.equal(await findKey(entries(otherTs), signedPrefix(ID, TS), body, keys), undefined, 'the timestamp is signed');
});

t.test('a lower entry bound (replay.max_signature_entries) is counted before any entry is decoded', async (t) => {
  t.equal(REPLAY_DEFAULTS.max_signature_entries, MAX_SIGNATURE_ENTRIES, 'the config default is the scheme bound');
  const of = (n: number, max: number) => {
    try {
      parseSignatureHeaders(raw({ ...good, 'webhook-signature': Array(n).fill(V1).join(' ') }), max);
      return 'ok';
    } catch (err) {
      if (err instanceof Rejection) return err.reason;
      throw err;
    }
  };
  t.equal(of(1, 1), 'ok');
  t.equal(of(2, 1), 'SIGNATURE_TOO_MANY_ENTRIES');
  t.equal(of(2, 2), 'ok');
  t.equal(of(3, 2), 'SIGNATURE_TOO_MANY_ENTRIES');
  // Malformed entries past the bound are not looked at: the count refuses first.
  const junk = parseSignatureHeaders.bind(null, raw({ ...good, 'webhook-signature': `${V1} not-an-entry` }), 1);
  t.throws(junk, { reason: 'SIGNATURE_TOO_MANY_ENTRIES' });
});

t.test('work: one HMAC per v1 key, one Ed25519 check per (v1a entry, key), and where it ran', async (t) => {
  const hmacs = [makeHmacKey(), makeHmacKey()].map((k) => parseVerifyKey(k.text));
  const eds = [makeEd25519Key(), makeEd25519Key(), makeEd25519Key()];
  const keys = [...hmacs, ...eds.map((k) => parseVerifyKey(k.whpk))];
  // Junk that OpenSSL cannot refuse early: real signatures, over another message.
  const other = Buffer.from('another message');
  const v1aJunk = eds.map((k) => `v1a,${edSign(null, other, k.privateKey).toString('base64')}`);
  const header = [V1, `v1,${Buffer.alloc(32, 1).toString('base64')}`, ...v1aJunk, V1A].join(' ');
  const entries = parseSignatureHeaders(raw({ ...good, 'webhook-signature': header })).entries;
  for (const [name, size, offThreadMinBytes, large] of [
    ['small body, default threshold', 100, undefined, false],
    ['body at the default threshold', OFF_THREAD_MIN_BYTES, undefined, true],
    ['forced onto the large-content path', 100, 0, true],
  ] as const) {
    const work: VerificationWork[] = [];
    const found = await findVerifyingKey(entries, signedPrefix(ID, TS), Buffer.alloc(size, 0x20), keys, { offThreadMinBytes, onWork: (w) => work.push(w) });
    t.equal(found, undefined, name);
    t.same(work.map((w) => [w.version, w.keyId, w.pairs, w.passes]), [
      ...hmacs.map((k) => ['v1', k.id, 2, 1]),
      ...keys.slice(2).map((k) => ['v1a', k.id, 4, 4]),
    ], `${name}: every key once, entries of its version each`);
    t.same(work.map((w) => w.where), [...hmacs.map(() => (large ? 'in slices' : 'at once')), ...eds.map(() => (large ? 'off thread' : 'at once'))],
      `${name}: ${large ? 'HMACs in slices, Ed25519 off the main thread' : 'all at once on the event loop'}`);
  }
  // A match stops the search: later keys are not tried, later entries of that key neither.
  const signed = signatureHeaders([parseSignKey(eds[1]!.privatePem)], Buffer.from('{}'), ID, TS)['webhook-signature'];
  const withMatch = parseSignatureHeaders(raw({ ...good, 'webhook-signature': `${v1aJunk[0]} ${signed} ${v1aJunk[2]}` })).entries;
  const work: VerificationWork[] = [];
  t.equal(await findVerifyingKey(withMatch, signedPrefix(ID, TS), Buffer.from('{}'), keys, { onWork: (w) => work.push(w) }), keys[3]);
  t.same(work.map((w) => [w.keyId, w.pairs]), [[keys[2]!.id, 3], [keys[3]!.id, 2]], 'no HMAC work without v1 entries; stops at the match');
});

t.test('an HMAC in slices is the HMAC at once, the event loop given back between two slices', async (t) => {
  const key = parseVerifyKey(makeHmacKey().text).key;
  const prefix = signedPrefix(ID, TS);
  for (const size of [0, 1, HMAC_SLICE_BYTES - 1, HMAC_SLICE_BYTES, HMAC_SLICE_BYTES + 1, 3 * HMAC_SLICE_BYTES + 7]) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 31 + 7) & 0xff;
    let pauses = 0;
    const sliced = await hmacSha256InSlices(key, prefix, body, async () => {
      pauses += 1;
    });
    t.same(sliced, hmacSha256(key, prefix, body), `${size} bytes: the same MAC`);
    t.equal(pauses, Math.max(0, Math.ceil(size / HMAC_SLICE_BYTES) - 1), `${size} bytes: one pause between two slices`);
  }
});

t.test('signRequest: the same headers as signatureHeaders, on both paths', async (t) => {
  const hmac = makeHmacKey();
  const ed = makeEd25519Key();
  const keys = [parseSignKey(hmac.text), parseSignKey(ed.privatePem)];
  const lib = new Webhook(hmac.text);
  const now = String(Math.floor(Date.now() / 1000));
  for (const size of [10, OFF_THREAD_MIN_BYTES, 3 * OFF_THREAD_MIN_BYTES + 1]) {
    const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(size) }));
    const onLoop = signatureHeaders(keys, body, ID, now);
    t.same(await signRequest(keys, body, ID, now), onLoop, `${size} bytes, default threshold`);
    t.same(await signRequest(keys, body, ID, now, 0), onLoop, `${size} bytes, on the large-content path`);
    t.ok(lib.verify(body.toString(), onLoop), 'the reference library verifies it (its v1 entry)');
  }
  await t.rejects(signRequest([], Buffer.alloc(1), ID, TS, 0), RangeError);
  await t.rejects(signRequest(keys, Buffer.alloc(1), 'short', TS, 0), RangeError);
});
