// The batch-number stage and tracker (replay/sequence-stage.ts) over the real memory store:
// findings, refusals, the claim withdrawn after an answer the signer retries, a store that does
// not answer, and compare-and-set under contention.
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import type { SequenceFinding } from '../../../src/audit/control-events.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { newConnection, newRequestContext, type RequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { createSequenceStage, createSequenceTracker } from '../../../src/replay/sequence-stage.ts';
import { MemorySequenceStore } from '../../../src/store/memory-sequences.ts';
import type { SequenceStore } from '../../../src/store/store.ts';

const EPOCH = 'ab'.repeat(16);
const log = createOperationalLog('silent');

function setup(sequence: Record<string, unknown>, store: SequenceStore = new MemorySequenceStore(100, () => clock.now), upstream: Record<string, unknown> = {}) {
  const config = configSchema.parse({
    pop_id: 'zurich-01', role: 'backup', listen: { host: '127.0.0.1', port: 0 },
    tls: { cert_file: 'c', key_file: 'k', client_ca_file: 'ca' },
    upstream: { url: 'http://127.0.0.1:1', ...upstream }, routes: [{ method: 'POST', path: '/a' }],
    auth: { methods: ['mtls', 'signature'] }, peers: [{ id: 'calgary-01', cert: { cn: 'calgary-01' } }],
    replay: { sequence: { gap_window: '1s', max_tracked: 16, ...sequence } },
  });
  const found: SequenceFinding[] = [];
  const tracker = createSequenceTracker({ store, now: () => clock.now, log, onFinding: (f) => found.push(f) });
  t.teardown(() => tracker.close());
  const stage = createSequenceStage(config, tracker)!;
  const run = async (n: number | string, options: { nonceReused?: boolean; pop?: string; epoch?: string } = {}) => {
    const ctx = requestFor(typeof n === 'number' ? `rs1_${options.epoch ?? EPOCH}_${n}` : n, options.pop);
    if (options.nonceReused) ctx.nonceReused = true;
    try {
      await stage.run(ctx);
      return { ctx, outcome: 'on' as const };
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      return { ctx, outcome: err.reason, rejection: err };
    }
  };
  return { stage, tracker, found, run };
}

const clock = { now: 1_000_000 };
let ids = 0;
function requestFor(webhookId: string, pop = 'calgary-01'): RequestContext {
  const ctx = newRequestContext({
    id: `req-${++ids}`, req: {} as IncomingMessage, res: {} as ServerResponse,
    conn: newConnection({ remoteAddress: '127.0.0.1', remotePort: 1 }), startedAt: 0, pop,
  });
  ctx.webhookId = webhookId;
  ctx.webhookTimestamp = Math.floor(clock.now / 1000);
  ctx.contractMet = true;
  return ctx;
}

t.test('report: below the lowest tracked is reported and forwarded', async (t) => {
  const { run, found } = setup({});
  for (let n = 1; n <= 40; n++) t.equal((await run(n)).outcome, 'on');
  const r = await run(3);
  t.equal(r.outcome, 'on', 'forwarded');
  t.same(r.ctx.batch, { epoch: EPOCH, sequence: 3 });
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH', 'SEQUENCE_BELOW_LOWEST']);
  t.equal(found[1]!.sequence, 3);
});

t.test('refuse: below the lowest, a duplicate, and ahead', async (t) => {
  const { run, found } = setup({ order: 'refuse' });
  for (let n = 1; n <= 40; n++) t.equal((await run(n)).outcome, 'on');
  t.equal((await run(3, {})).outcome, 'SEQUENCE_REFUSED', 'below the lowest');
  t.equal((await run(`rs1_${EPOCH}_40_2`)).outcome, 'SEQUENCE_REFUSED', 'a duplicate under another id');
  const ahead = await run(42);
  t.equal(ahead.outcome, 'SEQUENCE_OUT_OF_ORDER');
  t.equal(ahead.rejection?.retryAfter, 1);
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH', 'SEQUENCE_BELOW_LOWEST', 'SEQUENCE_DUPLICATE']);
  t.equal((await run(40, { nonceReused: true })).outcome, 'on', 'the same webhook-id again (deduplicate): left to its delivery record');
  t.equal(found.length, 3, 'and no finding');
});

t.test('an answer the signer retries withdraws the claim; another keeps it', async (t) => {
  const { run, stage, found, tracker } = setup({ order: 'refuse' });
  const first = await run(1);
  stage.settled(first.ctx, 200);
  const second = await run(2);
  stage.settled(second.ctx, 503);
  await tracker.sweepAll(); // the release is written by then (one store call each, in order)
  t.equal((await run(`rs1_${EPOCH}_2_2`)).outcome, 'on', 'the retry of 2 is in order again, not a duplicate');
  const third = await run(3);
  stage.settled(third.ctx, 500);
  await tracker.sweepAll();
  t.equal((await run(`rs1_${EPOCH}_3_2`)).outcome, 'SEQUENCE_REFUSED', 'a 500 is final: a second copy is a duplicate');
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH', 'SEQUENCE_DUPLICATE']);
});

t.test('required, and a webhook-id of another signer', async (t) => {
  t.equal((await setup({ required: true }).run('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W')).outcome, 'SEQUENCE_MISSING');
  const plain = await setup({}).run('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W');
  t.equal(plain.outcome, 'on');
  t.equal(plain.ctx.batch, undefined);
});

t.test('a store that does not answer, or keeps changing: refused, never untracked', async (t) => {
  const closed = new MemorySequenceStore(10, () => clock.now);
  closed.close();
  t.equal((await setup({}, closed).run(1)).outcome, 'SEQUENCE_STORE_UNAVAILABLE');
  let writes = 0;
  const contended: SequenceStore = {
    read: async () => undefined,
    compareAndSet: async () => {
      writes++;
      return false; // another replica always wrote first
    },
  };
  t.equal((await setup({}, contended).run(1)).outcome, 'SEQUENCE_STORE_UNAVAILABLE');
  t.equal(writes, 16, 'bounded attempts');
});

t.test('concurrent batches of one epoch in one process: queued, none refused', async (t) => {
  const { run, found } = setup({});
  const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => run(i + 1)));
  t.same(outcomes.filter((o) => o.outcome !== 'on').map((o) => o.outcome), []);
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH']);
});

t.test('a stored state this guard cannot read refuses the epoch\'s batches, never starts it over', async (t) => {
  const store = new MemorySequenceStore(10, () => clock.now);
  const { run, found } = setup({ order: 'refuse' }, store);
  t.equal((await run(1)).outcome, 'on');
  await store.compareAndSet(`calgary-01:${EPOCH}`, await store.read(`calgary-01:${EPOCH}`), '[1,1,1,[[1,1]],[]]', 60_000); // an older format
  const r = await run(`rs1_${EPOCH}_1_2`);
  t.equal(r.outcome, 'SEQUENCE_STORE_UNAVAILABLE');
  t.match(r.rejection?.detail, /unreadable/);
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH'], 'no second new epoch');
});

t.test('an rs1_ webhook-id that does not parse is refused, never forwarded untracked', async (t) => {
  const { run } = setup({});
  t.equal((await run(`rs1_${EPOCH}_1000000000000000`)).outcome, 'SEQUENCE_MISSING', '16 digits: past MAX_SEQUENCE');
  t.equal((await run('rs1_zz_1')).outcome, 'SEQUENCE_MISSING');
});

t.test('with upstream.deduplicate, a 502 the backup answered keeps its number; the guard\'s own 502 (backup unreachable) is withdrawn', async (t) => {
  const { run, stage, found, tracker } = setup({}, undefined, { deduplicate: {} });
  const first = await run(1);
  first.ctx.upstreamStatus = 502; // the backup's own answer: it has the batch
  stage.settled(first.ctx, 502);
  const second = await run(2);
  stage.settled(second.ctx, 502); // no upstream status: the guard's UPSTREAM_UNAVAILABLE
  await tracker.sweepAll();
  t.equal((await run(2, { nonceReused: false })).outcome, 'on', 'the retry of 2 claims it again');
  t.equal((await run(`rs1_${EPOCH}_1_2`)).outcome, 'on', 'report only');
  t.same(found.map((f) => f.reason), ['SEQUENCE_NEW_EPOCH', 'SEQUENCE_DUPLICATE'], '1 was kept: its second copy is a duplicate');
  clock.now += 5000;
  await tracker.sweepAll();
  t.same(found.filter((f) => f.reason === 'SEQUENCE_GAP'), [], 'and no gap');
});

t.test('one POP\'s many epochs do not push another POP\'s out of the sweep', async (t) => {
  const { run, found, tracker } = setup({});
  await run(1, { pop: 'calgary-01' });
  await run(3, { pop: 'calgary-01' });
  for (let i = 0; i < 300; i++) await run(1, { pop: 'toronto-02', epoch: i.toString(16).padStart(32, '0') });
  clock.now += 1000;
  await tracker.sweepAll();
  t.same(found.filter((f) => f.reason === 'SEQUENCE_GAP').map((f) => [f.pop, f.gap]), [['calgary-01', [2, 2]]]);
  t.ok(tracker.swept() <= 1 + 256, `${tracker.swept()} epochs swept`);
});

t.test('the sweep reports a gap with no later batch, once', async (t) => {
  const { run, found, tracker } = setup({});
  await run(1);
  await run(3);
  await tracker.sweepAll();
  t.same(found.filter((f) => f.reason === 'SEQUENCE_GAP'), [], 'within gap_window');
  clock.now += 1000;
  await tracker.sweepAll();
  await tracker.sweepAll();
  t.same(found.filter((f) => f.reason === 'SEQUENCE_GAP').map((f) => f.gap), [[2, 2]]);
});
