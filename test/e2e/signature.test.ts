// Signed requests through the real guard to the real demo backup: the reference library's v1,
// node:crypto's v1a, rotation, tampering, another POP's key, malformed headers, `replguard sign`;
// with a dozen other POPs configured, large bodies (checked off the main thread) signed and junk.
import { sign as edSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { parseSignKey } from '../../src/replay/keys.ts';
import type { SignKey } from '../../src/replay/signature.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call, type Reply } from '../helpers/client.ts';
import { baseConfig, runCli, startGuard } from '../helpers/guard.ts';
import { ecsProblems } from '../helpers/ecs.ts';
import { makePki } from '../helpers/pki.ts';
import { makeEd25519Key, makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

t.test('request signatures', async (t) => {
  const pki = makePki([]);
  const calgaryCert = pki.client('calgary-01');
  const zurichCert = pki.client('zurich-01');
  const current = makeHmacKey();
  const retired = makeHmacKey();
  const ed = makeEd25519Key();
  const zurichKey = makeHmacKey();
  const currentFile = writeKeyFile(current.text);
  // Other POPs with several keys each: none of them is ever tried for calgary-01's requests.
  const others = Array.from({ length: 12 }, (_, i) => ({
    id: `other-${String(i).padStart(2, '0')}`,
    cert: { cn: `other-${String(i).padStart(2, '0')}` },
    signing_keys: [writeKeyFile(makeHmacKey().text), writeKeyFile(makeEd25519Key().whpk, 0o644), writeKeyFile(makeEd25519Key().whpk, 0o644)],
  }));

  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    auth: { methods: ['mtls', 'signature'] },
    replay: { max_signature_entries: 8 },
    peers: [
      { id: 'calgary-01', cert: { cn: 'calgary-01' }, signing_keys: [currentFile, writeKeyFile(ed.whpk, 0o644)] },
      { id: 'zurich-01', cert: { cn: 'zurich-01' }, signing_keys: [writeKeyFile(zurichKey.text)] },
      ...others,
    ],
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  const now = () => Math.floor(Date.now() / 1000);
  let n = 0;
  const freshId = () => `e2e-signature-${String(n++).padStart(8, '0')}`;
  const bodyOf = (id: string, ts: number, pop = 'calgary-01') => Buffer.from(JSON.stringify({ source_pop: pop, entries: [{ id: 1, op: 'upsert' }, { id: 2, op: 'delete' }], timestamp: ts, nonce: id }));
  const send = (headers: Record<string, string>, body: Buffer, cert = calgaryCert) => call(guard.port, pki.caFile, { cert, body, headers });
  const signedWith = (keys: SignKey[], pop = 'calgary-01') => {
    const id = freshId();
    const ts = now();
    const body = bodyOf(id, ts, pop);
    return { body, headers: signatureHeaders(keys, body, id, String(ts)) };
  };
  const eventOf = async (reply: Reply) => {
    const id = reply.headers['x-replguard-request-id'];
    const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === id, 1);
    return event!;
  };

  await t.test('v1 signed by the standardwebhooks reference library: forwarded, signature headers stripped', async (t) => {
    const id = freshId();
    const ts = now();
    const body = bodyOf(id, ts);
    const lib = new Webhook(current.text);
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': lib.sign(id, new Date(ts * 1000), body.toString()) };
    const before = backup.received().length;
    const reply = await send(headers, body);
    t.equal(reply.status, 200);
    const event = await eventOf(reply);
    t.equal(event.event.reason, 'FORWARDED');
    t.same(event.replguard.credentials, ['mtls', 'signature']);
    t.equal(event.replguard.webhook_id, id);
    t.equal(event.replguard.entries, 2);
    const seen = backup.received()[before]!;
    t.ok(seen.body.equals(body), 'body forwarded byte for byte');
    t.notOk(seen.headers['webhook-id']);
    t.notOk(seen.headers['webhook-timestamp']);
    t.notOk(seen.headers['webhook-signature']);
    t.equal(seen.headers['x-replguard-source-pop'], 'calgary-01');
  });

  await t.test('v1a signed with node:crypto directly', async (t) => {
    const id = freshId();
    const ts = now();
    const body = bodyOf(id, ts);
    const sig = edSign(null, Buffer.concat([Buffer.from(`${id}.${ts}.`), body]), ed.privateKey).toString('base64');
    const reply = await send({ 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1a,${sig}` }, body);
    t.equal(reply.status, 200);
  });

  await t.test('rotation: a retired key beside the current one is accepted; the retired key alone is not', async (t) => {
    const both = signedWith([parseSignKey(retired.text), parseSignKey(current.text)]);
    t.equal((await send(both.headers, both.body)).status, 200);
    const old = signedWith([parseSignKey(retired.text)]);
    const reply = await send(old.headers, old.body);
    t.equal(reply.status, 401);
    t.equal((await eventOf(reply)).event.reason, 'SIGNATURE_MISMATCH');
  });

  await t.test('refusals reach no upstream and name their reason', async (t) => {
    const before = backup.received().length;
    const cases: Array<[string, () => { headers: Record<string, string>; body: Buffer; cert?: typeof calgaryCert }, number, string]> = [
      ['tampered body', () => {
        const r = signedWith([parseSignKey(current.text)]);
        return { headers: r.headers, body: Buffer.from(r.body.toString().replace('"upsert"', '"delete"')) };
      }, 401, 'SIGNATURE_MISMATCH'],
      ['an invalid-UTF-8 byte swapped for another (the reference library would give both one MAC)', () => {
        const id = freshId();
        const ts = now();
        const signedBody = Buffer.from(`{"source_pop":"calgary-01","entries":[],"note":"\xff"}`, 'latin1');
        const sent = Buffer.from(`{"source_pop":"calgary-01","entries":[],"note":"\xfe"}`, 'latin1');
        return { headers: signatureHeaders([parseSignKey(current.text)], signedBody, id, String(ts)), body: sent };
      }, 401, 'SIGNATURE_MISMATCH'],
      ['the same invalid-UTF-8 body, correctly signed over its raw bytes', () => {
        const id = freshId();
        const ts = now();
        const body = Buffer.from(`{"source_pop":"calgary-01","entries":[],"note":"\xff"}`, 'latin1');
        return { headers: signatureHeaders([parseSignKey(current.text)], body, id, String(ts)), body };
      }, 400, 'BODY_NOT_UTF8'],
      // Another POP's key is not tried: a request it signed, relayed over this connection, is a mismatch.
      ["zurich-01's key over calgary-01's connection", () => signedWith([parseSignKey(zurichKey.text)]), 401, 'SIGNATURE_MISMATCH'],
      ["calgary-01's key over zurich-01's connection", () => ({ ...signedWith([parseSignKey(current.text)], 'zurich-01'), cert: zurichCert }), 401, 'SIGNATURE_MISMATCH'],
      ['timestamp 1763800000abc', () => {
        const r = signedWith([parseSignKey(current.text)]);
        return { headers: { ...r.headers, 'webhook-timestamp': `${r.headers['webhook-timestamp']}abc` }, body: r.body };
      }, 400, 'SIGNATURE_TIMESTAMP_INVALID'],
      ['an id containing "."', () => {
        const r = signedWith([parseSignKey(current.text)]);
        return { headers: { ...r.headers, 'webhook-id': 'msg.2KWPBgLlAfxdpx2AI54' }, body: r.body };
      }, 400, 'SIGNATURE_ID_INVALID'],
      ['9 signature entries', () => {
        const r = signedWith([parseSignKey(current.text)]);
        return { headers: { ...r.headers, 'webhook-signature': Array(9).fill(r.headers['webhook-signature']).join(' ') }, body: r.body };
      }, 400, 'SIGNATURE_TOO_MANY_ENTRIES'],
      ['no signature headers', () => ({ headers: {}, body: bodyOf(freshId(), now()) }), 401, 'SIGNATURE_HEADERS_MISSING'],
    ];
    for (const [name, make, status, reason] of cases) {
      const { headers, body, cert } = make();
      const reply = await send(headers, body, cert);
      t.equal(reply.status, status, name);
      t.same(JSON.parse(reply.body), { error: status === 400 ? 'bad_request' : status === 401 ? 'unauthorized' : 'forbidden', request_id: reply.headers['x-replguard-request-id'] }, `${name}: generic body`);
      t.equal((await eventOf(reply)).event.reason, reason, name);
    }
    t.equal(backup.received().length, before, 'nothing reached the backup');
  });

  await t.test('large bodies with a dozen other POPs configured: signed ones pass, junk entries are refused and reach nothing', async (t) => {
    // About 8 MiB, under limits.max_body_bytes (10 MiB): checked off the main thread.
    const pad = 'p'.repeat(8 * 1024 * 1024);
    const large = (id: string, ts: number) => Buffer.from(JSON.stringify({ source_pop: 'calgary-01', entries: [{ id: 1, op: 'upsert' }], timestamp: ts, nonce: id, pad }));
    for (const key of [parseSignKey(current.text), parseSignKey(ed.privatePem)]) {
      const id = freshId();
      const ts = now();
      const body = large(id, ts);
      const before = backup.received().length;
      const reply = await send(signatureHeaders([key], body, id, String(ts)), body);
      t.equal(reply.status, 200, `${key.version} over a large body`);
      t.equal((await eventOf(reply)).event.reason, 'FORWARDED');
      t.ok(backup.received()[before]?.body.equals(body), 'forwarded byte for byte');
    }

    const before = backup.received().length;
    // Eight well-formed Ed25519 signatures over other content: each costs a full pass over the body.
    const junk = Array.from({ length: 8 }, (_, i) => `v1a,${edSign(null, Buffer.from(`not this request ${i}`), ed.privateKey).toString('base64')}`).join(' ');
    for (const cert of [calgaryCert, pki.client('other-03')]) {
      const id = freshId();
      const ts = now();
      const reply = await send({ 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': junk }, large(id, ts), cert);
      t.equal(reply.status, 401);
      const event = await eventOf(reply);
      t.equal(event.event.reason, 'SIGNATURE_MISMATCH');
      t.equal(event.event.kind, 'alert');
    }
    const nine = Array(9).fill(junk.split(' ')[0]).join(' ');
    const id = freshId();
    const ts = now();
    const reply = await send({ 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': nine }, large(id, ts));
    t.equal(reply.status, 400);
    t.equal((await eventOf(reply)).event.reason, 'SIGNATURE_TOO_MANY_ENTRIES', 'more than replay.max_signature_entries');
    t.equal(backup.received().length, before, 'nothing reached the backup');
  });

  await t.test('`replguard sign` prints headers that the guard accepts', async (t) => {
    const ts = now();
    const id = 'cli-signed-request-0001';
    const body = bodyOf(id, ts);
    const bodyFile = join(pki.dir, 'body.json');
    writeFileSync(bodyFile, body);
    const out = await runCli(['sign', '--key', currentFile, '--body', bodyFile, '--id', id, '--timestamp', String(ts)]);
    t.equal(out.code, 0, out.stderr);
    t.equal(out.stderr, '', 'no warnings: the body agrees with --id and --timestamp');
    const headers = Object.fromEntries(out.stdout.trim().split('\n').map((line) => {
      const colon = line.indexOf(': ');
      return [line.slice(0, colon), line.slice(colon + 2)];
    }));
    t.same(Object.keys(headers), ['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    t.equal((await send(headers, body)).status, 200);

    const mismatch = await runCli(['sign', '--key', currentFile, '--body', bodyFile]);
    t.equal(mismatch.code, 0);
    t.match(mismatch.stderr, /BODY_NONCE_MISMATCH/, 'warns that the body nonce is not the random id');
    const bad = await runCli(['sign', '--key', bodyFile, '--body', bodyFile]);
    t.equal(bad.code, 2, 'a file that is not a key is an operator error');
  });

  await t.test('every audit event written here is exact ECS (test/helpers/ecs.ts)', async (t) => {
    const events = guard.audit();
    t.ok(events.length > 0, `${events.length} events`);
    for (const e of events) t.same(ecsProblems(e), [], `${e.event.reason} (${e.event.action})`);
  });
});
