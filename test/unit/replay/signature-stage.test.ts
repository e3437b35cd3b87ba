// The signature stage with the body contract behind it, in process, with an injected clock:
// window edges, nonce recorded only after verification, kept for the whole window, store full;
// only the authenticated POP's keys are tried (the work is counted), large bodies without holding the event loop.
import { configSchema } from '../../../src/config/schema.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { sign as edSign } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { ConfigError } from '../../../src/config/errors.ts';
import type { RequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { compose } from '../../../src/pipeline/stage.ts';
import { createBodyContractStage } from '../../../src/replay/body-contract.ts';
import { parseSignKey } from '../../../src/replay/keys.ts';
import { OFF_THREAD_MIN_BYTES, type SignKey, type VerificationWork } from '../../../src/replay/signature.ts';
import { signatureHeaders } from '../../../src/replay/signing.ts';
import { createSignatureStage, type SignatureStageDeps } from '../../../src/replay/signature-stage.ts';
import { MemoryNonceStore } from '../../../src/store/memory.ts';
import { makeEd25519Key, makeHmacKey, writeKeyFile } from '../../helpers/signing.ts';

const MAX_AGE = 300_000;
const TS = 1_763_800_000;
const calgary = makeHmacKey();
const calgaryEd = makeEd25519Key();
const zurich = makeHmacKey();
const stranger = makeHmacKey();
const peers = [
  { id: 'calgary-01', cert: { cn: 'calgary-01' }, cert_sha256: [], signing_keys: [writeKeyFile(calgary.text), writeKeyFile(calgaryEd.whpk)] },
  { id: 'zurich-01', cert: { cn: 'zurich-01' }, cert_sha256: [], signing_keys: [writeKeyFile(zurich.text)] },
];

let counter = 0;
/** No timer in unit tests (reloads are driven explicitly); the stage's keys load once. */
const AUTH = configSchema.shape.auth.parse({ methods: ['mtls', 'signature'], reload_interval: 0 });
const LOG = createOperationalLog('error');

function freshId(): string {
  return `test-id-${String(counter++).padStart(12, '0')}`;
}

/** A request context as the earlier stages leave it: POP authenticated, body read. */
function context(headers: Record<string, string>, body: Buffer, pop = 'calgary-01'): RequestContext {
  const all = { 'content-type': 'application/json', ...headers };
  const req = { method: 'POST', headers: all, rawHeaders: Object.entries(all).flat() } as unknown as IncomingMessage;
  return {
    id: 'r', req, res: undefined as never, conn: undefined as never, startedAt: 0, path: '/api/replication/apply',
    pop, credentials: ['mtls'], body, entries: undefined, webhookId: undefined, webhookTimestamp: undefined,
    jti: undefined, tokenFingerprint: undefined, responseBytes: 0, interruptedBy: undefined,
  };
}

function signed(keys: SignKey[], options: { id?: string; ts?: number; body?: object; pop?: string } = {}): RequestContext {
  const id = options.id ?? freshId();
  const ts = options.ts ?? TS;
  const body = Buffer.from(JSON.stringify(options.body ?? { source_pop: options.pop ?? 'calgary-01', entries: [{ id: 1 }], timestamp: ts, nonce: id }));
  return context(signatureHeaders(keys, body, id, String(ts)), body, options.pop);
}

function setup(maxNonces = 100, options: { peers?: typeof peers; maxEntries?: number; deps?: Partial<SignatureStageDeps> } = {}) {
  const clock = { now: TS * 1000 };
  const store = new MemoryNonceStore({ maxNonces, now: () => clock.now });
  const replay = { max_age: MAX_AGE, max_nonces: maxNonces, max_signature_entries: options.maxEntries ?? 8 };
  const run = compose([
    createSignatureStage({ peers: options.peers ?? peers, replay, auth: AUTH }, { now: () => clock.now, nonceStore: store, log: LOG, ...options.deps }),
    createBodyContractStage({ limits: { max_json_depth: 32, max_json_keys_per_object: 1000, max_json_values: 200_000 }, auth: AUTH }),
  ], ['pop', 'body']); // the test sets what authentication and the body stage would
  const outcome = async (ctx: RequestContext) => {
    try {
      await run(ctx);
      return 'passed';
    } catch (err) {
      if (err instanceof Rejection) return err.reason;
      throw err;
    }
  };
  return { clock, store, outcome };
}

const hmacKey = parseSignKey(calgary.text);
const edKey = parseSignKey(calgaryEd.privatePem);

t.test('a signed request passes and leaves its facts on the context', async (t) => {
  const { outcome, store } = setup();
  const ctx = signed([hmacKey]);
  t.equal(await outcome(ctx), 'passed');
  t.same(ctx.credentials, ['mtls', 'signature']);
  t.equal(ctx.webhookTimestamp, TS);
  t.match(ctx.webhookId, /^test-id-/);
  t.equal(ctx.entries, 1);
  t.equal(await store.nonceCount(), 1);
  t.equal(await outcome(signed([edKey])), 'passed', 'v1a with the Ed25519 key');
});

t.test('the window, both directions, edges included', async (t) => {
  const { outcome, clock } = setup();
  clock.now = (TS + 300) * 1000;
  t.equal(await outcome(signed([hmacKey])), 'passed', 'exactly max_age old');
  clock.now = (TS + 300) * 1000 + 1;
  t.equal(await outcome(signed([hmacKey])), 'REPLAY_TIMESTAMP_STALE', 'one ms more');
  clock.now = (TS - 300) * 1000;
  t.equal(await outcome(signed([hmacKey])), 'passed', 'exactly max_age ahead');
  clock.now = (TS - 300) * 1000 - 1;
  t.equal(await outcome(signed([hmacKey])), 'REPLAY_TIMESTAMP_FUTURE', 'one ms more');
});

t.test('a nonce is kept for the whole window: first seen at the future edge, replayed at the stale edge', async (t) => {
  const { outcome, clock } = setup();
  const id = freshId();
  clock.now = (TS - 300) * 1000;
  t.equal(await outcome(signed([hmacKey], { id })), 'passed');
  clock.now = (TS + 300) * 1000;
  t.equal(await outcome(signed([hmacKey], { id })), 'REPLAY_NONCE_REUSED');
  clock.now += 1;
  t.equal(await outcome(signed([hmacKey], { id })), 'REPLAY_TIMESTAMP_STALE', 'after that the window refuses it');
});

t.test('a forged request does not burn the id it names', async (t) => {
  const { outcome, store } = setup();
  const id = freshId();
  t.equal(await outcome(signed([parseSignKey(stranger.text)], { id })), 'SIGNATURE_MISMATCH');
  t.equal(await store.nonceCount(), 0, 'nothing recorded');
  t.equal(await outcome(signed([hmacKey], { id })), 'passed', 'the legitimate request with that id goes through');
  t.equal(await outcome(signed([hmacKey], { id })), 'REPLAY_NONCE_REUSED');
});

t.test('keys of another POP are not keys of this one', async (t) => {
  const { outcome } = setup();
  t.equal(await outcome(signed([parseSignKey(zurich.text)])), 'SIGNATURE_MISMATCH', "zurich-01's key over calgary-01's connection");
  t.equal(await outcome(signed([parseSignKey(zurich.text)], { pop: 'zurich-01' })), 'passed', 'over its own connection');
  t.equal(await outcome(signed([hmacKey], { pop: 'zurich-01' })), 'SIGNATURE_MISMATCH', 'and the other way round');
  t.equal(await outcome(signed([parseSignKey(zurich.text), hmacKey])), 'passed', 'one valid entry of the own POP suffices');
  const sameId = freshId();
  t.equal(await outcome(signed([hmacKey], { id: sameId })), 'passed');
  t.equal(await outcome(signed([parseSignKey(zurich.text)], { id: sameId, pop: 'zurich-01' })), 'passed', 'nonces are per POP');
});

t.test('rotation: the retired key beside the current one', async (t) => {
  const { outcome } = setup();
  const retired = parseSignKey(makeHmacKey().text);
  t.equal(await outcome(signed([retired, hmacKey])), 'passed');
  t.equal(await outcome(signed([retired])), 'SIGNATURE_MISMATCH');
});

t.test('the signed facts bind the body', async (t) => {
  const { outcome } = setup();
  const id = freshId();
  t.equal(await outcome(signed([hmacKey], { id, body: { source_pop: 'calgary-01', nonce: 'another-nonce-value-123' } })), 'BODY_NONCE_MISMATCH');
  t.equal(await outcome(signed([hmacKey], { body: { source_pop: 'calgary-01', timestamp: TS - 1 } })), 'BODY_TIMESTAMP_MISMATCH');
  t.equal(await outcome(signed([hmacKey], { body: { source_pop: 'zurich-01' } })), 'BODY_SOURCE_POP_MISMATCH');
  const ctx = signed([hmacKey]);
  ctx.body = Buffer.from(ctx.body!.toString().replace('"id":1', '"id":2'));
  t.equal(await outcome(ctx), 'SIGNATURE_MISMATCH', 'tampered body');
});

t.test('store full: 503 reason, nothing evicted; store unavailable: its own reason', async (t) => {
  const { outcome, store } = setup(2);
  const first = freshId();
  t.equal(await outcome(signed([hmacKey], { id: first })), 'passed');
  t.equal(await outcome(signed([hmacKey])), 'passed');
  t.equal(await outcome(signed([hmacKey])), 'REPLAY_STORE_FULL');
  t.equal(await outcome(signed([hmacKey], { id: first })), 'REPLAY_NONCE_REUSED', 'the oldest nonce was not evicted');
  await store.close();
  t.equal(await outcome(signed([hmacKey])), 'REPLAY_STORE_UNAVAILABLE');
});

t.test('unusable keys fail at construction', async (t) => {
  const store = new MemoryNonceStore({ maxNonces: 1, now: Date.now });
  const bad = [{ ...peers[0]!, signing_keys: [writeKeyFile(makeHmacKey(16).text)] }];
  t.throws(() => createSignatureStage({ peers: bad, replay: undefined, auth: AUTH }, { now: Date.now, nonceStore: store, log: LOG }), ConfigError);
});

/** Ed25519 signatures over another message: junk that OpenSSL cannot refuse before hashing the content. */
function junkV1a(count: number): string {
  return Array.from({ length: count }, (_, i) => `v1a,${edSign(null, Buffer.from(`not this request ${i}`), calgaryEd.privateKey).toString('base64')}`).join(' ');
}

/** A POP with `v1` HMAC keys and `v1a` Ed25519 keys, as a peers[] entry. */
function peerWith(id: string, v1: number, v1a: number) {
  const files = [
    ...Array.from({ length: v1 }, () => writeKeyFile(makeHmacKey().text)),
    ...Array.from({ length: v1a }, () => writeKeyFile(makeEd25519Key().whpk)),
  ];
  return { id, cert: { cn: id }, cert_sha256: [], signing_keys: files };
}

t.test('the work of a refused request is entries x keys of the authenticated POP, whatever else is configured', async (t) => {
  const many = [peerWith('calgary-01', 1, 2), ...Array.from({ length: 12 }, (_, i) => peerWith(`other-${String(i).padStart(2, '0')}`, 2, 3))];
  const ownIds = new Set<string>();
  const work: VerificationWork[] = [];
  const { outcome } = setup(100, { peers: many, deps: { onWork: (w) => work.push(w) } });
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [], pad: 'x'.repeat(2 * OFF_THREAD_MIN_BYTES) }));
  for (const [name, header, v1Entries, v1aEntries] of [
    ['8 junk v1a entries', junkV1a(8), 0, 8],
    ['3 junk v1 and 5 junk v1a entries', [...Array.from({ length: 3 }, (_, i) => `v1,${Buffer.alloc(32, i).toString('base64')}`), junkV1a(5)].join(' '), 3, 5],
  ] as const) {
    work.length = 0;
    const ctx = context({ 'webhook-id': freshId(), 'webhook-timestamp': String(TS), 'webhook-signature': header }, body);
    t.equal(await outcome(ctx), 'SIGNATURE_MISMATCH', name);
    // calgary-01 has 1 HMAC key and 2 Ed25519 keys; the 12 other POPs' 60 keys are never tried.
    const pairs = work.reduce((n, w) => n + w.pairs, 0);
    const passes = work.reduce((n, w) => n + w.passes, 0);
    t.equal(pairs, v1Entries * 1 + v1aEntries * 2, `${name}: (entry, key) pairs = entries x keys of calgary-01, by version`);
    t.equal(passes, (v1Entries > 0 ? 1 : 0) + v1aEntries * 2, `${name}: one HMAC per key, one pass per Ed25519 pair`);
    for (const w of work) ownIds.add(w.keyId);
    t.ok(work.every((w) => w.where === (w.version === 'v1' ? 'in slices' : 'off thread')), `${name}: a body over OFF_THREAD_MIN_BYTES is checked without holding the event loop (HMAC in slices, Ed25519 off the main thread)`);
  }
  t.equal(ownIds.size, 3, "every key tried is one of calgary-01's three");

  // Below the threshold, the same checks run on the event loop.
  work.length = 0;
  const small = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [] }));
  t.equal(await outcome(context({ 'webhook-id': freshId(), 'webhook-timestamp': String(TS), 'webhook-signature': junkV1a(8) }, small)), 'SIGNATURE_MISMATCH');
  t.equal(work.reduce((n, w) => n + w.pairs, 0), 16);
  t.ok(work.every((w) => w.where === 'at once'), 'a small body is checked on the event loop');
});

t.test('a large body signed by the POP passes, v1 in slices and v1a off the main thread', async (t) => {
  const work: VerificationWork[] = [];
  const { outcome } = setup(100, { deps: { onWork: (w) => work.push(w) } });
  const pad = 'y'.repeat(OFF_THREAD_MIN_BYTES);
  for (const key of [hmacKey, edKey]) {
    work.length = 0;
    const id = freshId();
    const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [], nonce: id, pad }));
    const headers = signatureHeaders([key], body, id, String(TS));
    t.equal(await outcome(context({ ...headers, 'webhook-signature': `${junkV1a(1)} ${headers['webhook-signature']}` }, body)), 'passed', key.version);
    const wanted = key.version === 'v1' ? 'in slices' : 'off thread';
    t.ok(work.length > 0 && work.every((w) => w.where === wanted), `${key.version}: ${wanted}`);
  }
});

t.test('replay.max_signature_entries bounds the entries before any check', async (t) => {
  const work: VerificationWork[] = [];
  const { outcome } = setup(100, { maxEntries: 2, deps: { onWork: (w) => work.push(w) } });
  const body = Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [] }));
  t.equal(await outcome(context({ 'webhook-id': freshId(), 'webhook-timestamp': String(TS), 'webhook-signature': junkV1a(3) }, body)), 'SIGNATURE_TOO_MANY_ENTRIES');
  t.equal(work.length, 0, 'nothing was checked');
  const retired = parseSignKey(makeHmacKey().text);
  t.equal(await outcome(signed([retired, hmacKey])), 'passed', 'two entries (a rotation) are within the bound');
  t.equal(await outcome(signed([retired, retired, hmacKey])), 'SIGNATURE_TOO_MANY_ENTRIES', 'three are not');
});
