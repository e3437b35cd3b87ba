// Conformance for Deno 2 (node:test + node:assert: tap does not run under Deno): request
// signatures of large bodies checked as the guard does them: HMACs in slices on the event loop,
// Ed25519 off the main thread with WebCrypto.
// - the Wycheproof vectors (HMAC-SHA256, Ed25519) on every path: primitives, node:crypto at once
//   on the event loop, the large-content path (the same code as test/unit/replay/wycheproof.test.ts);
// - a large body's checks: the work is entries x keys, HMACs run in slices and Ed25519 off the
//   main thread, and the event loop turns between slices and checks;
// - signing a large body gives the same headers as signing at once.
// Run: npm run test:deno (deno test discovers *_test.ts; tap ignores them)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { parseSignKey, parseVerifyKey } from '../../src/replay/keys.ts';
import { findVerifyingKey, OFF_THREAD_MIN_BYTES, parseSignatureHeaders, signedPrefix, type VerificationWork } from '../../src/replay/signature.ts';
import { signatureHeaders, signRequest } from '../../src/replay/signing.ts';
import { runEd25519Vectors, runHmacVectors } from '../helpers/wycheproof.ts';

const ID = 'deno-conformance-0001';
const TS = '1763800000';

function edKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    sign: parseSignKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
    verify: parseVerifyKey(publicKey.export({ format: 'pem', type: 'spki' }).toString()),
    privateKey,
  };
}
const hmacText = () => `whsec_${randomBytes(32).toString('base64')}`;
/** A body whose bytes differ from slice to slice and whose last HMAC slice is short: a slice hashed at the wrong offset changes the MAC. */
function patterned(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >> 12)) & 0xff;
  return body;
}

test('deno: Wycheproof HMAC-SHA256 on every path', async () => {
  const run = await runHmacVectors();
  assert.equal(run.total, run.numberOfTests);
  assert.deepEqual(run.failures, []);
  assert.equal(run.accepted + run.refused, run.total);
  assert.ok(run.accepted > 0 && run.truncatedRefused > 0);
});

test('deno: Wycheproof Ed25519 on every path and key form', async () => {
  const run = await runEd25519Vectors();
  assert.equal(run.total, run.numberOfTests);
  assert.deepEqual(run.failures, []);
  assert.equal(run.accepted + run.refused, run.total);
  assert.ok(run.accepted > 0 && run.refused > 0);
});

test('deno: a large body is checked in slices and off the main thread, entries x keys, the event loop turning', async () => {
  const eds = [edKey(), edKey()];
  const hmac = hmacText();
  const keys = [parseVerifyKey(hmac), ...eds.map((k) => k.verify)];
  const body = patterned(4 * 1024 * 1024 + 777);
  const prefix = signedPrefix(ID, TS);
  // Junk OpenSSL and Deno cannot refuse early: real signatures, over another message.
  const junk = Array.from({ length: 6 }, (_, i) => `v1a,${sign(null, Buffer.from(`other ${i}`), eds[i % 2]!.privateKey).toString('base64')}`);
  const header = [`v1,${randomBytes(32).toString('base64')}`, ...junk].join(' ');
  const entries = parseSignatureHeaders(['webhook-id', ID, 'webhook-timestamp', TS, 'webhook-signature', header]).entries;

  const work: VerificationWork[] = [];
  let turns = 0;
  let settled = false;
  const spin = () => {
    if (settled) return;
    turns += 1;
    setImmediate(spin);
  };
  setImmediate(spin);
  const found = await findVerifyingKey(entries, prefix, body, keys, { onWork: (w) => work.push(w) });
  settled = true;
  assert.equal(found, undefined);
  assert.deepEqual(work.map((w) => [w.version, w.pairs, w.passes, w.where]), [['v1', 1, 1, 'in slices'], ['v1a', 6, 6, 'off thread'], ['v1a', 6, 6, 'off thread']]);
  // 17 slices of the HMAC (the last one short), then 12 Ed25519 passes, each awaited: the loop runs between two of them.
  assert.ok(turns >= 27, `the event loop turned ${turns} times during 17 HMAC slices and 12 off-thread checks`);

  // And a good entry among the junk still verifies, on this path.
  const good = signatureHeaders([eds[1]!.sign], body, ID, TS)['webhook-signature'];
  const withGood = parseSignatureHeaders(['webhook-id', ID, 'webhook-timestamp', TS, 'webhook-signature', `${junk[0]} ${good}`]).entries;
  assert.equal(await findVerifyingKey(withGood, prefix, body, keys), keys[2]);
  const mac = signatureHeaders([parseSignKey(hmac)], body, ID, TS)['webhook-signature'];
  const withMac = parseSignatureHeaders(['webhook-id', ID, 'webhook-timestamp', TS, 'webhook-signature', `${junk[0]} ${mac}`]).entries;
  assert.equal(await findVerifyingKey(withMac, prefix, body, keys), keys[0]);
});

test('deno: signing a large body (in slices, off the main thread) gives the headers signing at once gives', async () => {
  const keys = [parseSignKey(hmacText()), edKey().sign];
  for (const size of [10, OFF_THREAD_MIN_BYTES, 2 * 1024 * 1024 + 12345]) {
    const body = patterned(size);
    const onLoop = signatureHeaders(keys, body, ID, TS);
    assert.deepEqual(await signRequest(keys, body, ID, TS), onLoop, `${size} bytes`);
    assert.deepEqual(await signRequest(keys, body, ID, TS, 0), onLoop, `${size} bytes, forced onto the large-content path`);
  }
});
