// The JSON structure bounds through the real guard (issue 15, class 7(b)): the four bodies
// that cost the old guard one to three seconds of CPU each, within the body limit and correctly
// signed, are refused with their own codes and audited, while another POP's requests on other
// connections are served meanwhile; an honest batch larger than one scan slice still passes.
import t from 'tap';
import { parseSignKey } from '../../src/replay/keys.ts';
import { signatureHeaders } from '../../src/replay/signing.ts';
import { call, type Reply } from '../helpers/client.ts';
import { baseConfig, startGuard, TEST_LIMITS } from '../helpers/guard.ts';
import { makePki } from '../helpers/pki.ts';
import { makeHmacKey, writeKeyFile } from '../helpers/signing.ts';
import { startBackup } from '../helpers/upstream.ts';

const HEAD = '{"source_pop":"calgary-01","entries":';
const pathological: Array<[string, () => string, number, string]> = [
  ['4M nested arrays', () => `${HEAD}${'['.repeat(4_000_000)}${']'.repeat(4_000_000)}}`, 400, 'BODY_JSON_TOO_DEEP'],
  ['400k keys in one object', () => `{"source_pop":"calgary-01",${Array.from({ length: 400_000 }, (_, i) => `"k${i}":0`).join(',')}}`, 400, 'BODY_JSON_TOO_MANY_KEYS'],
  ['3.4M empty objects', () => `${HEAD}[${Array(3_400_000).fill('{}').join(',')}]}`, 413, 'BODY_JSON_TOO_MANY_VALUES'],
  ['300k escaped non-ASCII keys', () => `{"source_pop":"calgary-01",${Array.from({ length: 300_000 }, (_, i) => `"\\u00e9\\u00e8${i}":0`).join(',')}}`, 400, 'BODY_JSON_TOO_MANY_KEYS'],
];

t.test('JSON structure bounds', async (t) => {
  const pki = makePki([]);
  const attacker = pki.client('calgary-01');
  const honest = pki.client('montreal-01');
  const keys = { 'calgary-01': makeHmacKey(), 'montreal-01': makeHmacKey() };
  const backup = await startBackup();
  const guard = await startGuard(baseConfig(pki, backup.url, {
    // The default bounds (limits.max_json_*), with the test suite's generous rate and ban limits.
    limits: { ...TEST_LIMITS },
    auth: { methods: ['mtls', 'signature'] },
    peers: Object.entries(keys).map(([id, k]) => ({ id, cert: { cn: id }, signing_keys: [writeKeyFile(k.text)] })),
  }));
  t.teardown(async () => {
    await guard.stop();
    await backup.stop();
  });

  let n = 0;
  const send = (pop: keyof typeof keys, text: string): Promise<Reply> => {
    const id = `e2e-json-${String(n++).padStart(10, '0')}`;
    const ts = Math.floor(Date.now() / 1000);
    const body = Buffer.from(text);
    return call(guard.port, pki.caFile, {
      cert: pop === 'calgary-01' ? attacker : honest, body, timeoutMs: 60_000,
      headers: { ...signatureHeaders([parseSignKey(keys[pop].text)], body, id, String(ts)), 'content-type': 'application/json' },
    });
  };
  const honestBody = (entries: number) => JSON.stringify({
    source_pop: 'montreal-01',
    entries: Array.from({ length: entries }, (_, i) => ({ id: i, op: 'upsert', key: `user:${i}`, value: { name: 'élève', seats: 12 } })),
  });

  await t.test('each pathological body is refused with its code and audited; another POP is served meanwhile', async (t) => {
    const before = backup.received().length;
    const attacks = pathological.map(([name, make, status, reason]) => ({ name, status, reason, body: make() }));
    for (const a of attacks) t.ok(Buffer.byteLength(a.body) < 10 * 1024 * 1024, `${a.name}: within the 10 MiB body limit`);
    // Every attack on its own connection, at once, and honest requests on other connections
    // while they are in flight.
    const attackReplies = Promise.all(attacks.map((a) => send('calgary-01', a.body)));
    const honestReplies = await Promise.all(Array.from({ length: 5 }, (_, i) => send('montreal-01', honestBody(i + 1))));
    for (const [i, reply] of honestReplies.entries()) {
      t.equal(reply.status, 200, `honest request ${i + 1} served`);
      t.equal(JSON.parse(reply.body).applied, i + 1);
    }
    const replies = await attackReplies;
    for (const [i, a] of attacks.entries()) {
      const reply = replies[i]!;
      t.equal(reply.status, a.status, `${a.name}: ${a.status}`);
      const rid = reply.headers['x-replguard-request-id'];
      const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === rid, 1);
      t.equal(event!.event.reason, a.reason, `${a.name}: audited as ${a.reason}`);
      t.equal(event!.replguard.pop, 'calgary-01', `${a.name}: the POP named`);
    }
    const forwarded = backup.received().slice(before);
    t.equal(forwarded.length, honestReplies.length, 'only the honest requests reached the backup');
  });

  await t.test('an honest batch of many slices passes, its entries counted', async (t) => {
    const text = honestBody(8000);
    t.ok(text.length > 8 * 64 * 1024, 'larger than eight scan slices');
    const reply = await send('montreal-01', text);
    t.equal(reply.status, 200);
    const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === reply.headers['x-replguard-request-id'], 1);
    t.equal(event!.replguard.entries, 8000);
  });

  await t.test('a duplicate key past the first slice is still found (the sliced key scan)', async (t) => {
    const text = honestBody(8000).replace(/\}$/, ',"entries":[]}');
    const reply = await send('montreal-01', text);
    t.equal(reply.status, 400);
    const [event] = await guard.waitForEvents((e) => e.replguard?.request_id === reply.headers['x-replguard-request-id'], 1);
    t.equal(event!.event.reason, 'BODY_DUPLICATE_KEY');
  });
});
