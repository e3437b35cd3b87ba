// upstream.deduplicate's claim when the store cannot take it: a full memory store refuses a new
// batch (DELIVERY_STORE_FULL) and forgets none it holds; a store that does not answer refuses
// (DELIVERY_STORE_UNAVAILABLE). Either way the batch is not forwarded unrecorded, and the
// refusal carries the dedup header the signer reads.
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import { createOperationalLog } from '../../../src/log/operational.ts';
import { newConnection, newRequestContext, type RequestContext } from '../../../src/pipeline/context.ts';
import { Rejection } from '../../../src/pipeline/reasons.ts';
import { createDelivery, DEDUP_HEADER } from '../../../src/proxy/delivery.ts';
import { MemoryDeliveryStore } from '../../../src/store/memory-deliveries.ts';
import { StoreUnavailableError, type DeliveryStore } from '../../../src/store/store.ts';

const log = createOperationalLog('error');
const settings = { window: 3_600_000, max_batches: 2, max_answer_bytes: 4096 };

function request(body: string): RequestContext {
  const ctx = newRequestContext({
    id: 'r', req: {} as IncomingMessage, res: {} as ServerResponse, startedAt: 0,
    conn: newConnection({ remoteAddress: '192.0.2.7', remotePort: 1, tlsVersion: 'TLSv1.3', peer: undefined, verifiedTrust: undefined }),
  });
  ctx.pop = 'calgary-01';
  ctx.body = Buffer.from(body);
  return ctx;
}

async function refusal(work: Promise<unknown>): Promise<Rejection> {
  try {
    await work;
  } catch (err) {
    if (err instanceof Rejection) return err;
    throw err;
  }
  throw new Error('not refused');
}

t.test('a full memory store refuses a new batch and keeps the ones it holds', async (t) => {
  const store = new MemoryDeliveryStore(settings.max_batches, Date.now);
  const delivery = createDelivery(settings, false, { store, log });
  t.equal((await delivery.begin(request('{"n":1}'))).kind, 'forward');
  t.equal((await delivery.begin(request('{"n":2}'))).kind, 'forward');
  const full = await refusal(delivery.begin(request('{"n":3}')));
  t.equal(full.reason, 'DELIVERY_STORE_FULL');
  t.equal(full.status, 503);
  t.equal(full.headers?.[DEDUP_HEADER], 'on', 'the signer can tell a deduplicating guard');
  const held = await refusal(delivery.begin(request('{"n":1}')));
  t.equal(held.reason, 'DELIVERY_IN_FLIGHT', 'the first batch is still remembered, not evicted');
});

t.test('a store that does not answer refuses the batch', async (t) => {
  const down: DeliveryStore = {
    claim: async () => {
      throw new StoreUnavailableError('redis: connection refused');
    },
    settle: async () => undefined,
  };
  const delivery = createDelivery(settings, false, { store: down, log });
  const refused = await refusal(delivery.begin(request('{"n":1}')));
  t.equal(refused.reason, 'DELIVERY_STORE_UNAVAILABLE');
  t.equal(refused.status, 503);
});
